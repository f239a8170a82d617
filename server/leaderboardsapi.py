"""Leaderboards over HTTP: ``GET /api/leaderboards`` and ``GET|PUT /api/leaderboards/me``.

Query parameters of the board (all optional):

- ``scope``: ``global`` (default) or ``cohort`` (the requester's own cohort;
  course staff may name another with ``cohort=``, students may not).
- ``window``: ``week`` (default), ``month`` or ``all``; in UTC (ISO weeks,
  calendar months). ``date=YYYY-MM-DD`` picks the window holding that UTC day
  (default today): a closed window is answered from its frozen standings.
- ``around``: ``me`` (default: the top plus the requester's neighbours) or ``top``.
- ``limit``: size of the top list, 1 to 100 (default 10).

The rules (what counts, ties, hiding, freezing) are in progress/leaderboard.py.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, cast

from aiohttp import web

from progress.leaderboard import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PERIODS,
    Board,
    Period,
    leaderboard,
    set_visible,
    visibility,
)
from rooms import STAFF_ROLES
from store import StoreUnavailable

from .apiauth import IDENTITY
from .errors import json_error, read_body, unavailable
from .keys import STORE

MAX_BODY = 1024
#: Dates a board may be asked for (window arithmetic stays inside ``date``'s range).
EARLIEST = date(1970, 1, 1)
LATEST = date(9000, 12, 31)


def _choice(request: web.Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.query.get(name, default)
    if value not in allowed:
        raise json_error(
            web.HTTPBadRequest, f"invalid {name} {value!r}: use one of {', '.join(allowed)}"
        )
    return value


def board_json(board: Board) -> dict[str, Any]:
    w = board.window
    return {
        "scope": board.scope,
        "cohort": board.cohort,
        "window": {
            "period": w.period,
            "start": w.start.isoformat() if w.end is not None else None,
            "end": w.end.isoformat() if w.end is not None else None,
            "time_zone": "UTC",
            "frozen": board.frozen,
        },
        "ranked": board.ranked,
        "entries": [
            {
                "rank": e.rank,
                "user": str(e.user_id),
                "username": e.username,
                "name": e.display_name,
                "points": e.points,
                "reached_at": e.reached_at.isoformat(),
                "me": e.me,
            }
            for e in board.entries
        ],
        "me": {
            "rank": board.me.rank,
            "points": board.me.points,
            "reached_at": board.me.reached_at.isoformat() if board.me.reached_at else None,
            "visible": board.me.visible,
        },
    }


async def get_board(request: web.Request) -> web.Response:
    """The board as the requester sees it (hidden people left out, their own line in)."""
    identity = request[IDENTITY]
    scope = _choice(request, "scope", ("global", "cohort"), "global")
    period = cast(Period, _choice(request, "window", PERIODS, "week"))
    around = _choice(request, "around", ("me", "top"), "me")
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise json_error(web.HTTPBadRequest, f"invalid limit: a whole number 1 to {MAX_LIMIT}")
    at: date | None = None
    if "date" in request.query:
        try:
            at = date.fromisoformat(request.query["date"])
        except ValueError as exc:
            raise json_error(web.HTTPBadRequest, "invalid date: use YYYY-MM-DD (UTC)") from exc
        if not EARLIEST <= at <= LATEST:
            raise json_error(web.HTTPBadRequest, f"invalid date: between {EARLIEST} and {LATEST}")
    cohort: str | None = None
    if scope == "cohort":
        asked = request.query.get("cohort")
        if asked is not None and asked != identity.cohort:
            if identity.role not in STAFF_ROLES:
                raise json_error(
                    web.HTTPForbidden,
                    "permission denied: another cohort's board is for course staff; "
                    "leave out cohort= for your own",
                )
            cohort = asked
        else:
            cohort = identity.cohort
        if not cohort:
            raise json_error(
                web.HTTPBadRequest,
                "no cohort: you are in none (staff: name one with cohort=)",
            )
    elif "cohort" in request.query:
        raise json_error(web.HTTPBadRequest, "cohort= goes with scope=cohort")
    try:
        board = await leaderboard(
            request.app[STORE],
            viewer=identity.user_uuid,
            scope="cohort" if scope == "cohort" else "global",
            cohort=cohort,
            period=period,
            at=at,
            around="me" if around == "me" else "top",
            limit=limit,
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(board_json(board))


async def get_me(request: web.Request) -> web.Response:
    """Whether the requester shows on other people's boards, and whether by choice."""
    try:
        shown, choice = await visibility(request.app[STORE], request[IDENTITY].user_uuid)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response({"visible": shown, "choice": choice})


async def put_me(request: web.Request) -> web.Response:
    """``{"visible": bool}``: show or hide the requester on boards (their choice
    outranks their cohort's default)."""
    body = await read_body(request, MAX_BODY)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, 'body must be {"visible": true|false}') from exc
    if (
        not isinstance(data, dict)
        or set(data) != {"visible"}
        or not isinstance(data["visible"], bool)
    ):
        raise json_error(web.HTTPBadRequest, 'body must be {"visible": true|false}')
    try:
        shown = await set_visible(request.app[STORE], request[IDENTITY].user_uuid, data["visible"])
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response({"visible": shown, "choice": data["visible"]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leaderboards", get_board)
    app.router.add_get("/api/leaderboards/me", get_me)
    app.router.add_put("/api/leaderboards/me", put_me)
