"""Self-paced progress through a demo: each person's own, and everyone's for staff.

A client playing a demo on its own (a room in ``self-paced`` mode, or the demo
page) reports where it is. What is kept is the furthest the person got
(``fraction`` never decreases, ``completed`` never goes back to false) and
where they were last (``position``, ``step``), so that a student reopening an
earlier step to reread it does not lose their progress, yet resumes where
they left off.

Progress events (``DemoWatched`` at the milestones 0.5 and 0.9, as in live
mode) are NOT taken from the reported fraction: a client can claim anything,
and clients never award anything. The fraction credited is the reported one
capped by what the server saw: the wall time since this person's first report
for the demo (``demo_progress.first_reported_at``, the database's clock) times
the fastest playback rate (``demos.playback.MAX_RATE``, twice real time), over the demo's
length (a recording's seconds; a walkthrough counts ``SECONDS_PER_STEP`` per
step, since it has no length in time). Claiming 1.0 right after the first
report earns nothing; the same claim once enough time has passed does. A
milestone's key (``demo:<demo>:<user>:self:<milestone>``) makes it count once.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from demos.playback import MAX_RATE
from progress import DemoWatched
from rooms import STAFF_ROLES
from store import StoreUnavailable
from store.records import DemoProgress

from .apiauth import IDENTITY
from .demosapi import demo_id_of
from .demowatch import MILESTONES
from .errors import decode_body, json_error, read_body, unavailable
from .keys import DEMOS, STORE
from .progressfeed import FEED, key_part

#: A progress report is a few numbers: anything bigger is not one.
MAX_BODY = 4096
#: Most entries in the staff listing.
MAX_LISTED = 1000
#: A walkthrough's length in time for the cap on credited progress: per step.
SECONDS_PER_STEP = 10.0


def credited_fraction(claimed: float, elapsed_seconds: float, duration_seconds: float) -> float:
    """The part of a demo that could have been watched: ``claimed``, capped by the
    time since the first report at the fastest playback rate."""
    if duration_seconds <= 0:
        return claimed
    return max(0.0, min(claimed, elapsed_seconds * MAX_RATE / duration_seconds, 1.0))


class ProgressBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PUT /api/demos/<id>/progress``; unknown fields are refused so a typo is not lost."""

    position: Annotated[float, msgspec.Meta(ge=0)]
    fraction: Annotated[float, msgspec.Meta(ge=0, le=1)]
    step: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    completed: bool = False


_decoder = msgspec.json.Decoder(ProgressBody)


def progress_json(p: DemoProgress | None, demo_id: str) -> dict[str, Any]:
    if p is None:  # nothing reported yet: at the start
        return {
            "demo": demo_id,
            "position": 0.0,
            "step": None,
            "fraction": 0.0,
            "completed": False,
            "updated_at": None,
        }
    return {
        "demo": p.demo_id,
        "position": p.position,
        "step": p.step_id,
        "fraction": p.fraction,
        "completed": p.completed,
        "updated_at": p.updated_at.isoformat(),
    }


async def _existing_demo_steps(request: web.Request, demo_id: str) -> tuple[str, ...]:
    """The demo's step ids (empty for a recording); 404 when the library has no such demo."""
    demo = await request.app[DEMOS].demo(demo_id)
    if demo is None:
        raise json_error(web.HTTPNotFound, f"no demo {demo_id!r}")
    return tuple(step.id for step in demo.steps or [])


async def get_progress(request: web.Request) -> web.Response:
    """The caller's own progress in the demo (at the start if nothing was reported)."""
    demo_id = demo_id_of(request)
    me = request[IDENTITY].user_uuid
    try:
        await _existing_demo_steps(request, demo_id)
        progress = await request.app[STORE].get_progress(me, demo_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(progress_json(progress, demo_id))


async def put_progress(request: web.Request) -> web.Response:
    """Report where the caller is; answers with what is kept."""
    demo_id = demo_id_of(request)
    body = await read_body(request, MAX_BODY)
    report = decode_body(_decoder, body, "progress")
    if not math.isfinite(report.position):
        raise json_error(web.HTTPBadRequest, "invalid progress: position: must be a finite number")
    me = request[IDENTITY].user_uuid
    try:
        steps = await _existing_demo_steps(request, demo_id)
        if report.step is not None and report.step not in steps:
            raise json_error(
                web.HTTPBadRequest,
                f"invalid progress: step: demo {demo_id!r} has no step {report.step!r}",
            )
        store = request.app[STORE]
        progress = await store.put_progress(
            me,
            demo_id,
            position=report.position,
            step_id=report.step,
            fraction=report.fraction,
            completed=report.completed,
        )
        async with store.connection("demo progress clock") as conn:
            elapsed = await conn.fetchval(
                "SELECT extract(epoch FROM now() - first_reported_at) FROM demo_progress "
                "WHERE user_id = $1 AND demo_id = $2",
                me,
                demo_id,
            )
        timeline = await request.app[DEMOS].timeline(demo_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if timeline is not None and elapsed is not None:
        length = (
            (timeline.duration + 1) * SECONDS_PER_STEP
            if timeline.kind == "walkthrough"
            else timeline.duration
        )
        credited = credited_fraction(progress.fraction, float(elapsed), length)
        for milestone in MILESTONES:
            if credited + 1e-9 >= milestone:
                request.app[FEED].submit(
                    DemoWatched(
                        key=f"demo:{key_part(demo_id)}:{me}:self:{milestone}",
                        user_id=me,
                        occurred_at=datetime.now(UTC),
                        demo_id=demo_id,
                        fraction=credited,
                    )
                )
    return web.json_response(progress_json(progress, demo_id))


async def list_progress(request: web.Request) -> web.Response:
    """Everyone's progress in the demo, most recently active first: course staff only."""
    identity = request[IDENTITY]
    if identity.role not in STAFF_ROLES:
        raise json_error(
            web.HTTPForbidden, "permission denied: everyone's progress is for course staff"
        )
    demo_id = demo_id_of(request)
    try:
        await _existing_demo_steps(request, demo_id)
        entries = await request.app[STORE].list_progress(demo_id, MAX_LISTED)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(
        {
            "demo": demo_id,
            "progress": [
                {
                    "user": str(p.user_id),
                    "username": p.username,
                    "name": p.display_name,
                    **progress_json(p, demo_id),
                }
                for p in entries
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/demos/{demo_id}/progress", get_progress)
    app.router.add_put("/api/demos/{demo_id}/progress", put_progress)
    app.router.add_get("/api/demos/{demo_id}/progress/all", list_progress)
