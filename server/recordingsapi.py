"""Recording a room over HTTP: the same commands as the socket's ``record`` message.

Why an HTTP door too: a lecture-capture script or a staff dashboard can start
and stop recordings without holding a room socket, and a stop answers only once
the recording is in the library (or says why it is not), which a script needs.

With several nodes, any node answers for the room: the state is read from the
room's shared slot when another node records it, a start takes that slot
(``RecordingService.begin``), and a stop or marker is forwarded to the holding
node, whose answer (the saved demo, the marker) comes back over the room's bus
(``RecordingService.command``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rooms import STAFF_ROLES, JoinRefused, RoomRole
from rooms.access import a_or_an
from rooms.extension import RecordState

from .apiauth import IDENTITY, allowed_room
from .auth import person_of
from .errors import json_error, json_object
from .keys import REGISTRY
from .recordings import Outcome, RecordingService, RecordRefused
from .recordslots import RecordSlot

RECORDINGS = web.AppKey("recordings", RecordingService)
ACTIONS = ("start", "stop", "marker")


def _state_json(
    room_id: str,
    state: RecordState,
    service: RecordingService,
    elsewhere: RecordSlot | None = None,
) -> dict[str, Any]:
    """The state as the API tells it (``elsewhere``: the slot of another node's recording)."""
    session = service.active.get(room_id)
    out: dict[str, Any] = {
        "room": room_id,
        "recording": state.recording,
        "by": state.by,
        "started": state.started,
        "events": state.events,
        "demo": session.demo_id if session is not None else state.demo,
    }
    if session is None and elsewhere is not None:
        out["demo"] = elsewhere.demo
        out["title"] = elsewhere.title
    if session is not None:
        out["title"] = session.title
        out["elapsed"] = session.recorder.elapsed
        out["bytes"] = session.recorder.size
        out["max_bytes"] = session.recorder.max_bytes
    return out


def _refused(refused: RecordRefused) -> web.HTTPException:
    kind: type[web.HTTPException] = web.HTTPConflict
    if refused.status == 400:
        kind = web.HTTPBadRequest
    elif refused.status == 503:
        kind = web.HTTPServiceUnavailable
    return json_error(kind, refused.text)


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise json_error(web.HTTPBadRequest, f"{key} must be a string")
    return value


async def get_recording(request: web.Request) -> web.Response:
    """Whether the room is being recorded (and the latest saved recording's id if not)."""
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="seeing the recording state")
    service = request.app[RECORDINGS]
    state, elsewhere = await service.shared_state(room_id)
    return web.json_response(_state_json(room_id, state, service, elsewhere))


async def post_recording(request: web.Request) -> web.Response:
    """``{"action": "start" | "stop" | "marker", "demo"?, "title"?, "label"?}``."""
    room_id = await allowed_room(request, RoomRole.EDITOR, doing="recording")
    identity = request[IDENTITY]
    if identity.role not in STAFF_ROLES:
        who = a_or_an(identity.role.replace("_", " "))
        raise json_error(
            web.HTTPForbidden,
            "permission denied: recording needs an instructor or teaching assistant who can "
            f"edit this room; you are {who}",
        )
    body = await json_object(request)
    action = body.get("action")
    if action not in ACTIONS:
        raise json_error(web.HTTPBadRequest, f"action must be one of {', '.join(ACTIONS)}")
    demo, title, label = _text(body, "demo"), _text(body, "title"), _text(body, "label")
    service = request.app[RECORDINGS]
    if action == "start":
        try:
            async with request.app[REGISTRY].hold(room_id) as room:
                try:
                    session = await service.begin(
                        room, person_of(identity), None, demo=demo, title=title
                    )
                except RecordRefused as refused:
                    raise _refused(refused) from refused
        except JoinRefused as refused:
            raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
        return web.json_response(
            {**_state_json(room_id, session.state(), service), "title": session.title},
            status=201,
        )
    session = service.active.get(room_id)
    try:
        if session is not None:
            result = await service.command(session.room, action, label, None)
        elif service.slots is None or (await service.shared_state(room_id))[1] is None:
            raise json_error(web.HTTPConflict, f"room {room_id!r} is not being recorded")
        else:  # recorded by another node: asked over the room's bus, the room held here
            try:
                async with request.app[REGISTRY].hold(room_id) as room:
                    result = await service.command(room, action, label, None)
            except JoinRefused as refused:
                raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    except RecordRefused as refused:
        raise _refused(refused) from refused
    if not isinstance(result, Outcome):
        return web.json_response({"room": room_id, "t": result.t, "label": result.label})
    outcome = result
    answer = {
        "room": room_id,
        "recording": False,
        "demo": outcome.demo,
        "title": outcome.title,
        "events": outcome.events,
        "duration": outcome.duration,
        "saved": outcome.saved,
    }
    if not outcome.saved:
        answer["error"] = outcome.error
        return web.json_response(answer, status=503)
    return web.json_response(answer)


def add_routes(app: web.Application, service: RecordingService) -> None:
    """The routes, and the service's shutdown: recordings in progress are saved first."""
    app[RECORDINGS] = service

    async def save_recordings(app: web.Application) -> None:
        await service.close()

    app.on_shutdown.append(save_recordings)
    app.router.add_get("/api/rooms/{room_id}/recording", get_recording)
    app.router.add_post("/api/rooms/{room_id}/recording", post_recording)
