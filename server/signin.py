"""Sign-in the way Jupyter does it: a link with a one-time token, exchanged for a session.

On start (shared-secret mode) the server prints a sign-in link for an
instructor. Opening it checks the token, records it as used (a link signs in
once), creates or updates the user's row, and sets a session cookie holding an
access token; the page and the room sockets read that cookie. ``opencode-live
token --signin`` makes such links for a class.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from store import StoreUnavailable

from .auth import SESSION_COOKIE, refusal_status
from .errors import json_error
from .keys import STORE, VERIFIER
from .tokens import TokenRefused

SESSION_SECONDS = 12 * 3600
SIGNIN_SECONDS = 7 * 24 * 3600


async def signin(request: web.Request) -> web.StreamResponse:
    verifier = request.app[VERIFIER]
    try:
        identity = await asyncio.to_thread(verifier.verify, request.query.get("token"))
    except TokenRefused as refused:
        kind = web.HTTPForbidden if refusal_status(refused.why) == 403 else web.HTTPUnauthorized
        raise json_error(kind, f"sign-in refused: {refused}") from refused
    if identity.purpose != "signin" or identity.token_id is None:
        raise json_error(web.HTTPForbidden, "sign-in refused: not a sign-in link's token")
    store = request.app[STORE]
    try:
        if not await store.consume_signin_token(identity.token_id, identity.user_uuid):
            raise json_error(web.HTTPForbidden, "sign-in refused: this link was used already")
        await store.upsert_user(
            identity.user_uuid, identity.user_id, identity.name, identity.role, identity.cohort
        )
    except StoreUnavailable as exc:
        raise json_error(web.HTTPServiceUnavailable, str(exc)) from exc
    session = verifier.mint(
        name=identity.name,
        role=identity.role,
        user_id=identity.user_id,
        cohort=identity.cohort,
        ttl_seconds=SESSION_SECONDS,
    )
    response = web.HTTPFound(request.query.get("next", "/") if _safe_next(request) else "/")
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )
    raise response


def _safe_next(request: web.Request) -> bool:
    """Only a path on this server: never an open redirect."""
    target = request.query.get("next", "/")
    # "//host" and "/\\host" are other sites to a browser
    return target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target


def signin_link(request_base: str, token: str) -> str:
    return f"{request_base.rstrip('/')}/signin?token={token}"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/signin", signin)
    app.router.add_post("/signout", signout)


async def signout(request: web.Request) -> web.StreamResponse:
    """Forget the session cookie (the page cannot: it is HttpOnly) and go to the front page."""
    response = web.HTTPFound("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
