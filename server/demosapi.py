"""The demo library over HTTP: staff publish validated demos, everyone signed in reads them.

A demo's content is fetched once over HTTP; a room's playback state only names
the demo and the position, so the socket never carries a demo's bulk.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from demos import dump_demo, parse_demo
from rooms import STAFF_ROLES
from store import StoreUnavailable

from .apiauth import IDENTITY
from .errors import json_error, read_body, unavailable
from .keys import DEMOS, SETTINGS, STORE
from .upgrade import ROOM_ID, ROOM_ID_RULE


def demo_id_of(request: web.Request) -> str:
    """The ``{demo_id}`` of the path, checked (400 naming the rule otherwise)."""
    demo_id = request.match_info["demo_id"]
    if not ROOM_ID.match(demo_id):
        raise json_error(web.HTTPBadRequest, f"invalid demo id: use {ROOM_ID_RULE}")
    return demo_id


async def list_demos(request: web.Request) -> web.Response:
    kind = request.query.get("kind")  # ?kind=walkthrough|recording: only those
    if kind not in (None, "walkthrough", "recording"):
        raise json_error(web.HTTPBadRequest, "kind must be walkthrough or recording")
    try:
        demos = await request.app[STORE].list_demos()
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    demos = [d for d in demos if kind is None or d.kind == kind]
    return web.json_response(
        {
            "demos": [
                {
                    "id": d.id,
                    "title": d.title,
                    "kind": d.kind,
                    "created_at": d.created_at.isoformat(),
                    "updated_at": d.updated_at.isoformat(),
                }
                for d in demos
            ]
        }
    )


async def get_demo(request: web.Request) -> web.Response:
    demo_id = demo_id_of(request)
    try:
        document = await request.app[STORE].get_demo(demo_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if document is None:
        raise json_error(web.HTTPNotFound, f"no demo {demo_id!r}")
    return web.Response(text=document, content_type="application/json")


async def put_demo(request: web.Request) -> web.Response:
    """Publish or replace a demo: the body is the demo file, checked like `demo validate`."""
    identity = request[IDENTITY]
    if identity.role not in STAFF_ROLES:
        raise json_error(
            web.HTTPForbidden, "permission denied: publishing demos needs course staff"
        )
    demo_id = demo_id_of(request)
    limit = request.app[SETTINGS].max_message_bytes
    body = await read_body(request, limit)
    demo, problems = parse_demo(body, f"{demo_id}.demo.json")
    if problems or demo is None:
        raise web.HTTPBadRequest(
            text=msgspec.json.encode(
                {"error": "the demo does not validate", "problems": [str(p) for p in problems]}
            ).decode(),
            content_type="application/json",
        )
    kind = demo.kind
    try:
        created = await request.app[STORE].put_demo(
            demo_id, demo.title, kind, dump_demo(demo).decode(), identity.user_uuid
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    request.app[DEMOS].forget(demo_id)
    return web.json_response(
        {"id": demo_id, "title": demo.title, "kind": kind, "created": created},
        status=201 if created else 200,
    )


async def delete_demo(request: web.Request) -> web.Response:
    if request[IDENTITY].role not in STAFF_ROLES:
        raise json_error(web.HTTPForbidden, "permission denied: removing demos needs course staff")
    demo_id = demo_id_of(request)
    try:
        removed = await request.app[STORE].delete_demo(demo_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    request.app[DEMOS].forget(demo_id)
    if not removed:
        raise json_error(web.HTTPNotFound, f"no demo {demo_id!r}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/demos", list_demos)
    app.router.add_get("/api/demos/{demo_id}", get_demo)
    app.router.add_put("/api/demos/{demo_id}", put_demo)
    app.router.add_delete("/api/demos/{demo_id}", delete_demo)
