"""The HTTP API's door: every ``/api/`` request names a user, who has an hourly allowance.

The token comes the same ways as the socket's (bearer header, session cookie,
``?token=``). Over the allowance the answer is 429 with ``Retry-After``; the
handlers then ask ``require_role`` for the person's role in the room they touch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from rooms import RoomRole, metrics
from store import StoreUnavailable

from .auth import Refused, token_from
from .errors import json_error, refused_error
from .keys import API_LIMIT, GATE
from .ratelimit import HourlyLimit, retry_after_header
from .tokens import Identity
from .ws import check_room_id

API_PREFIX = "/api/"
IDENTITY = web.RequestKey("identity", Identity)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    gate = request.app[GATE]
    try:
        identity = await gate.identify(token_from(request.query_string, request.headers.items()))
    except Refused as refused:
        raise refused_error(refused) from refused
    await spend_allowance(request.app[API_LIMIT], identity, "API requests")
    try:
        await gate.ensure_user(identity)  # first use of a token makes the user's row
    except StoreUnavailable as exc:
        raise json_error(web.HTTPServiceUnavailable, str(exc)) from exc
    request[IDENTITY] = identity
    return await handler(request)


async def spend_allowance(limit: HourlyLimit, identity: Identity, what: str) -> None:
    """429 with Retry-After when the person has used up this hour's allowance.

    Counted across the nodes when the limit is shared (``SharedHourlyLimit``).
    """
    _refuse(limit, await limit.spend(identity.user_uuid), what)


def _refuse(limit: HourlyLimit, wait: float | None, what: str) -> None:
    if wait is None:
        return
    metrics.RATE_LIMITED.labels(limit=what).inc()
    error = json_error(
        web.HTTPTooManyRequests,
        f"rate limit: {limit.limit} {what} per hour per user; retry in "
        f"{retry_after_header(wait)} s",
    )
    error.headers["Retry-After"] = retry_after_header(wait)
    raise error


async def require_role(
    request: web.Request, room_id: str, need: RoomRole, *, doing: str
) -> RoomRole:
    """The requester's role in the room; 403 (or 404) when it is below ``need``."""
    identity = request[IDENTITY]
    try:
        role = await request.app[GATE].role_in(identity, room_id, create=False)
    except Refused as refused:
        raise refused_error(refused) from refused
    if role < need:
        raise json_error(
            web.HTTPForbidden,
            f"permission denied: {doing} in room {room_id!r} needs the {need.label} role; "
            f"you are {role.with_article}",
        )
    return role


async def allowed_room(request: web.Request, need: RoomRole, *, doing: str) -> str:
    """The room id of the URL, once the requester is known to hold ``need`` there."""
    room_id = request.match_info["room_id"]
    check_room_id(room_id)
    await require_role(request, room_id, need, doing=doing)
    return room_id
