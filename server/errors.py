"""Errors a user can cause, answered as JSON that names what was wrong."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from .auth import Refused


def json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def unavailable(exc: Exception) -> web.HTTPException:
    """503 saying why (the database or a service is away): nothing was changed."""
    return json_error(web.HTTPServiceUnavailable, str(exc))


def too_large(limit: int, actual: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=actual,
        text=json.dumps({"error": f"body of {actual} bytes is over the {limit}-byte limit"}),
        content_type="application/json",
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, or 413 once it passes ``limit`` bytes.

    ``StreamReader.read(n)`` returns what has arrived so far, not ``n`` bytes:
    one call would silently keep only the start of a big upload.
    """
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, request.content_length)
    body = bytearray()
    while len(body) <= limit and (chunk := await request.content.read(limit + 1 - len(body))):
        body += chunk
    if len(body) > limit:
        raise too_large(limit, len(body))
    return bytes(body)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or 400 saying it must be one."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, "body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "body must be a JSON object")
    return body


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


T = TypeVar("T")

_AT = re.compile(r"^(?P<message>.*?) - at `\$\.?(?P<path>[^`]*)`$", re.DOTALL)


def field_problem(exc: msgspec.ValidationError) -> str:
    """msgspec's ``Expected ... - at `$.files``` as ``files: Expected ...``: the field first."""
    text = str(exc)
    match = _AT.match(text)
    if match and match["path"]:
        return f"{match['path']}: {match['message']}"
    return text


def decode_body(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """``body`` decoded and checked, or a 400 ``invalid <what>: <field>: <problem>``."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise json_error(web.HTTPBadRequest, f"invalid {what}: {field_problem(exc)}") from exc
    except msgspec.DecodeError as exc:
        raise json_error(web.HTTPBadRequest, f"invalid {what}: body is not JSON: {exc}") from exc
