"""Errors a user can cause, answered as JSON that names what was wrong."""

from __future__ import annotations

import json

from aiohttp import web

from .auth import Refused


def json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def too_large(limit: int, actual: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=actual,
        text=json.dumps({"error": f"body of {actual} bytes is over the {limit}-byte limit"}),
        content_type="application/json",
    )


def refused_error(refused: Refused) -> web.HTTPException:
    """The gate's refusal as the HTTP error of its status."""
    kind = _BY_STATUS.get(refused.status, web.HTTPForbidden)
    error = json_error(kind, refused.message)
    if refused.status == 401:
        error.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return error


_BY_STATUS: dict[int, type[web.HTTPException]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    500: web.HTTPInternalServerError,
    503: web.HTTPServiceUnavailable,
}
