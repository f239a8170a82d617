"""Questions and quiz tallies over HTTP: for review after class, and for pages not in the room.

What the socket sends live (``questions``, ``quiz.tally``) can also be read
here: the questions by anyone who may read the room, the quiz tallies only by
course staff who can edit it, since students should not see how the room
answered before they have answered themselves.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rooms import RoomRole, can_control_demo
from store import StoreUnavailable
from store.records import Question

from . import answers
from .apiauth import IDENTITY, allowed_room, require_role
from .auth import person_of
from .errors import json_error, unavailable
from .keys import DEMOS, STORE
from .questions import MAX_LISTED, question_steps, tally_of
from .upgrade import ROOM_ID, ROOM_ID_RULE
from .ws import check_room_id


def demo_param(request: web.Request) -> str:
    """The ``?demo=`` of the request: the demo the questions or answers are about."""
    demo_id = request.query.get("demo")
    if not demo_id:
        raise json_error(web.HTTPBadRequest, "demo: give the demo's id as ?demo=<id>")
    if not ROOM_ID.match(demo_id):
        raise json_error(web.HTTPBadRequest, f"demo: invalid demo id: use {ROOM_ID_RULE}")
    return demo_id


def question_json(q: Question, given: tuple[answers.Answer, ...] = ()) -> dict[str, Any]:
    return {
        "id": q.id,
        "demo": q.demo_id,
        "text": q.text,
        "by": q.by_name,
        "votes": q.votes,
        "answered": q.answered,
        "created_at": q.created_at.isoformat(),
        "step": q.step_id,
        "at": q.at,
        "answers": [
            {
                "id": a.id,
                "text": a.text,
                "by": a.by_name,
                "user": str(a.user_id),
                "accepted": a.accepted,
                "created": a.created_ms,
            }
            for a in given
        ],
    }


async def list_questions(request: web.Request) -> web.Response:
    """A room's questions about a demo with their answers: unanswered first, most voted,
    oldest first."""
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="reading questions")
    demo_id = demo_param(request)
    me = request[IDENTITY].user_uuid
    store = request.app[STORE]
    try:
        found = await answers.list_questions(store, room_id, demo_id, MAX_LISTED)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(
        {
            "room": room_id,
            "demo": demo_id,
            "questions": [question_json(v.question, v.answers) for v in found],
            "voted": sorted(v.question.id for v in found if me in v.voters),
        }
    )


async def quiz_tallies(request: web.Request) -> web.Response:
    """How the room answered each question of a walkthrough: course staff who can edit it."""
    room_id = request.match_info["room_id"]
    check_room_id(room_id)
    role = await require_role(request, room_id, RoomRole.VIEWER, doing="reading quiz answers")
    if not can_control_demo(person_of(request[IDENTITY]), role):
        raise json_error(
            web.HTTPForbidden,
            "permission denied: quiz answers are for an instructor or teaching assistant who "
            f"can edit room {room_id!r}; you are {role.with_article}",
        )
    demo_id = demo_param(request)
    try:
        demo = await request.app[DEMOS].demo(demo_id)
        counts = await request.app[STORE].quiz_counts(room_id, demo_id) if demo else []
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if demo is None:
        raise json_error(web.HTTPNotFound, f"no demo {demo_id!r}")
    steps = []
    for step_id, question in question_steps(demo):
        tally = tally_of(demo_id, step_id, question, counts)
        steps.append(
            {
                "step": step_id,
                "prompt": question.prompt,
                "choices": question.choices,
                "counts": tally.counts,
                "total": tally.total,
                "correct": tally.correct,
            }
        )
    return web.json_response({"room": room_id, "demo": demo_id, "steps": steps})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/rooms/{room_id}/questions", list_questions)
    app.router.add_get("/api/rooms/{room_id}/quiz", quiz_tallies)
