"""Errors a user can cause, answered as JSON that names what was wrong."""

from __future__ import annotations

import json

from aiohttp import web


def json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def too_large(limit: int, actual: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=actual,
        text=json.dumps({"error": f"body of {actual} bytes is over the {limit}-byte limit"}),
        content_type="application/json",
    )
