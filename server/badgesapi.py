"""Achievements exported as Open Badges 3.0 credentials, over HTTP (issue 8).

- ``GET /api/users/<id>/achievements/<achievement>/credential``: the person's
  ``OpenBadgeCredential`` as JSON, or ``?format=jwt`` as the signed compact
  VC-JWT (the verifiable form). Same permissions as the person's achievements
  (oneself; staff for their cohort; admins); 404 when not awarded.
- ``GET /badges/issuer`` (issuer ``Profile``), ``GET /badges/jwks`` (the public
  keys, a JWK set), ``GET /badges/keys/<thumbprint>`` (one JWK: what a VC-JWT's
  ``kid`` header points at) and ``GET /badges/achievements/<id>`` (the
  ``Achievement``): the ids inside a credential, so they are public, without a
  token, for verifiers who hold only the credential. The same documents are
  under ``/api/badges/...`` for signed-in clients.

Ids are built from ``--public-url`` (the server's address as people reach it),
so that an issuer's identity never depends on the Host header a client sent;
a server run without it uses the address each request came to.

The signing key lives in the data folder (``badge-key.pem``, created on first
use, like the ``auth-secret``); several server processes behind one name must
share it, as they share the secret.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from progress.badges import BadgeKey, Urls, achievement, award, credential, definition
from progress.badges import issuer_profile as profile
from store import StoreUnavailable

from .errors import json_error, unavailable
from .keys import SETTINGS, STORE
from .learnersapi import visible_user

FORMATS = ("json", "jwt")
JSON_LD = "application/ld+json"


class BadgeKeys:
    """The badge key, read (or made) on first use: a server that never exports a
    badge never writes a key file, and generating one stays off the event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._key: BadgeKey | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> BadgeKey:
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    self._key = await asyncio.to_thread(BadgeKey.load_or_create, self.data_dir)
        return self._key


BADGE_KEYS = web.AppKey("badge_keys", BadgeKeys)


def urls_of(request: web.Request) -> Urls:
    """The badges' ids: under the configured public address, so that an issuer's
    identity does not depend on the Host header a client sent; else (a server
    run without one) under the address the request came to."""
    public = app_public_url(request.app)
    return Urls(public or f"{request.scheme}://{request.host}")


def app_public_url(app: web.Application) -> str:
    return app[SETTINGS].public_url.rstrip("/")


async def _key(request: web.Request) -> BadgeKey:
    try:
        return await request.app[BADGE_KEYS].get()
    except (OSError, ValueError) as exc:
        raise json_error(
            web.HTTPServiceUnavailable, f"the badge signing key cannot be read: {exc}"
        ) from exc


async def get_credential(request: web.Request) -> web.Response:
    """The person's credential for one awarded achievement."""
    user = await visible_user(request, request.match_info["user"])
    wanted = request.match_info["achievement"]
    form = request.query.get("format", "json")
    if form not in FORMATS:
        raise json_error(
            web.HTTPBadRequest, f"invalid format {form!r}: use one of {', '.join(FORMATS)}"
        )
    try:
        async with request.app[STORE].connection("read an award") as conn:
            found = await award(conn, user, wanted)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if found is None:
        raise json_error(web.HTTPNotFound, f"achievement {wanted!r} is not awarded to {user}")
    urls = urls_of(request)
    vc = credential(urls, found[0], user, found[1])
    if form == "jwt":
        key = await _key(request)
        return web.Response(text=key.sign(urls, vc), content_type="application/jwt")
    return web.json_response(vc, content_type=JSON_LD)


async def get_issuer(request: web.Request) -> web.Response:
    return web.json_response(profile(urls_of(request)), content_type=JSON_LD)


async def get_jwks(request: web.Request) -> web.Response:
    key = await _key(request)
    return web.json_response(key.jwks(urls_of(request)), content_type="application/jwk-set+json")


async def get_key(request: web.Request) -> web.Response:
    key = await _key(request)
    if request.match_info["thumbprint"] != key.thumbprint:
        raise json_error(web.HTTPNotFound, "no such badge key")
    return web.json_response(key.public_jwk(urls_of(request)), content_type="application/jwk+json")


async def get_achievement(request: web.Request) -> web.Response:
    """An achievement's definition (retired ones too: credentials name them)."""
    wanted = request.match_info["achievement"]
    try:
        async with request.app[STORE].connection("read an achievement") as conn:
            found = await definition(conn, wanted)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if found is None:
        raise json_error(web.HTTPNotFound, f"no achievement {wanted!r}")
    return web.json_response(
        achievement(urls_of(request), found, standalone=True), content_type=JSON_LD
    )


def add_routes(app: web.Application) -> None:
    app[BADGE_KEYS] = BadgeKeys(app[SETTINGS].resolved_data_dir())
    app.router.add_get("/api/users/{user}/achievements/{achievement}/credential", get_credential)
    for prefix in ("/badges", "/api/badges"):
        app.router.add_get(f"{prefix}/issuer", get_issuer)
        app.router.add_get(f"{prefix}/jwks", get_jwks)
        app.router.add_get(f"{prefix}/keys/{{thumbprint}}", get_key)
        app.router.add_get(f"{prefix}/achievements/{{achievement}}", get_achievement)
