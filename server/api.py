"""The server-side document API: list rooms, read and write a room's files.

Writes are CRDT changes made on the server's copy of the document and sent to
connected clients like any other update, so an open editor sees them live and
a collaborator's concurrent edit is kept.
"""

from __future__ import annotations

from aiohttp import web

from rooms import JoinRefused, RoomRegistry, RoomRole

from .apiauth import IDENTITY, allowed_room
from .errors import json_error, read_body
from .keys import REGISTRY, SETTINGS

MAX_PATH_LENGTH = 1024


def check_path(path: str) -> None:
    """A file path is a relative POSIX path: no empty, "." or ".." segments, no controls."""
    problem = None
    if not path or len(path) > MAX_PATH_LENGTH:
        problem = f"must be 1 to {MAX_PATH_LENGTH} characters"
    elif path.startswith("/") or path.endswith("/"):
        problem = "must not start or end with '/'"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "must not have empty, '.' or '..' segments"
    elif any(ord(ch) < 32 or ch == "\x7f" or ch == "\\" for ch in path):
        problem = "must not contain control characters or '\\'"
    if problem is not None:
        raise json_error(web.HTTPBadRequest, f"invalid file path {path!r}: {problem}")


async def get_files(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="reading files")
    registry: RoomRegistry = request.app[REGISTRY]
    try:
        async with registry.hold(room_id) as room:
            files = room.document.read_files()
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    return web.json_response({"room": room_id, "files": files})


async def get_file(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="reading files")
    path = request.match_info["path"]
    check_path(path)
    registry: RoomRegistry = request.app[REGISTRY]
    try:
        async with registry.hold(room_id) as room:
            content = room.document.read_file(path)
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    if content is None:
        raise json_error(web.HTTPNotFound, f"no file {path!r} in room {room_id!r}")
    return web.Response(text=content, content_type="text/plain", charset="utf-8")


async def put_file(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.EDITOR, doing="writing files")
    path = request.match_info["path"]
    check_path(path)
    limit = request.app[SETTINGS].max_message_bytes
    body = await read_body(request, limit)
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json_error(web.HTTPBadRequest, f"file content is not UTF-8 text: {exc}") from exc
    registry: RoomRegistry = request.app[REGISTRY]
    try:
        async with registry.hold(room_id) as room:
            created = room.document.read_file(path) is None
            update = room.document.put_file(path, content)
            if update is not None:
                await room.write(update, request[IDENTITY].user_uuid)
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    except ConnectionError as exc:
        raise json_error(web.HTTPServiceUnavailable, str(exc)) from exc
    return web.json_response(
        {"room": room_id, "path": path, "created": created, "changed": update is not None},
        status=201 if created else 200,
    )


async def delete_file(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.EDITOR, doing="deleting files")
    path = request.match_info["path"]
    check_path(path)
    registry: RoomRegistry = request.app[REGISTRY]
    try:
        async with registry.hold(room_id) as room:
            update = room.document.delete_file(path)
            if update is not None:
                await room.write(update, request[IDENTITY].user_uuid)
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    except ConnectionError as exc:
        raise json_error(web.HTTPServiceUnavailable, str(exc)) from exc
    if update is None:
        raise json_error(web.HTTPNotFound, f"no file {path!r} in room {room_id!r}")
    return web.Response(status=204)
