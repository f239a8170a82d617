"""Recording a room over HTTP: the same commands as the socket's ``record`` message.

Why an HTTP door too: a lecture-capture script or a staff dashboard can start
and stop recordings without holding a room socket, and a stop answers only once
the recording is in the library (or says why it is not), which a script needs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from rooms import STAFF_ROLES, JoinRefused, RoomRole
from rooms.access import a_or_an
from rooms.extension import RecordState

from .apiauth import IDENTITY, allowed_room
from .auth import person_of
from .errors import json_error, json_object
from .keys import REGISTRY
from .recordings import RecordingService, RecordRefused

RECORDINGS = web.AppKey("recordings", RecordingService)
ACTIONS = ("start", "stop", "marker")


def _state_json(room_id: str, state: RecordState, service: RecordingService) -> dict[str, Any]:
    session = service.active.get(room_id)
    out: dict[str, Any] = {
        "room": room_id,
        "recording": state.recording,
        "by": state.by,
        "started": state.started,
        "events": state.events,
        "demo": session.demo_id if session is not None else state.demo,
    }
    if session is not None:
        out["title"] = session.title
        out["elapsed"] = session.recorder.elapsed
        out["bytes"] = session.recorder.size
        out["max_bytes"] = session.recorder.max_bytes
    return out


def _refused(refused: RecordRefused) -> web.HTTPException:
    kind = web.HTTPBadRequest if refused.status == 400 else web.HTTPConflict
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
    return web.json_response(_state_json(room_id, service.state(room_id), service))


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
                    session = service.start(room, person_of(identity), None, demo=demo, title=title)
                except RecordRefused as refused:
                    raise _refused(refused) from refused
        except JoinRefused as refused:
            raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
        return web.json_response(
            {**_state_json(room_id, session.state(), service), "title": session.title},
            status=201,
        )
    session = service.active.get(room_id)
    if session is None:
        raise json_error(web.HTTPConflict, f"room {room_id!r} is not being recorded")
    if action == "marker":
        try:
            marker = service.marker(session.room, label)
        except RecordRefused as refused:
            raise _refused(refused) from refused
        return web.json_response({"room": room_id, "t": marker.t, "label": marker.label})
    try:
        task = service.stop(session.room, None)
    except RecordRefused as refused:
        raise _refused(refused) from refused
    # shielded: a client that hangs up does not cancel the save
    outcome = await asyncio.shield(task)
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
