"""Named versions of a room: save, list, look at, restore.

A restore is a new CRDT change that makes the workspace equal to the version;
connected clients receive it live and nothing in the history is rewritten.
"""

from __future__ import annotations

from aiohttp import web

from crdt import files_of
from rooms import JoinRefused, RoomRegistry, RoomRole
from store import Store, StoreUnavailable, Version, VersionInfo

from .apiauth import IDENTITY, allowed_room
from .errors import json_error, unavailable
from .keys import REGISTRY, STORE


def _version_json(version: VersionInfo) -> dict[str, object]:
    return {
        "id": version.id,
        "room": version.room_id,
        "name": version.name,
        "upto_seq": version.upto_seq,
        "created_at": version.created_at.isoformat(),
    }


async def _version(request: web.Request, room_id: str) -> Version:
    raw = request.match_info["version"]
    if not raw.isdigit():
        raise json_error(web.HTTPNotFound, f"no version {raw!r} in room {room_id!r}")
    version = await request.app[STORE].get_version(room_id, int(raw))
    if version is None:
        raise json_error(web.HTTPNotFound, f"no version {raw} in room {room_id!r}")
    return version


async def create_version(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.EDITOR, doing="saving a version")
    try:
        body = await request.json()
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, 'body must be JSON: {"name": "..."}') from exc
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise json_error(web.HTTPBadRequest, "a version needs a name of 1 to 200 characters")
    registry: RoomRegistry = request.app[REGISTRY]
    store: Store = request.app[STORE]
    try:
        async with registry.hold(room_id) as room:
            # Only committed updates are in the document, up to last_seq.
            version = await store.create_version(
                room_id, name, room.document.doc.get_update(), room.last_seq
            )
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(_version_json(version), status=201)


async def list_versions(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="listing versions")
    try:
        versions = await request.app[STORE].list_versions(room_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response({"room": room_id, "versions": [_version_json(v) for v in versions]})


async def version_files(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="reading a version")
    try:
        version = await _version(request, room_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response({**_version_json(version), "files": files_of(version.state)})


async def restore_version(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.EDITOR, doing="restoring a version")
    registry: RoomRegistry = request.app[REGISTRY]
    try:
        version = await _version(request, room_id)
        async with registry.hold(room_id) as room:
            update = room.document.replace_files(files_of(version.state))
            if update is not None:
                await room.write(update, request[IDENTITY].user_uuid)
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    except (StoreUnavailable, ConnectionError) as exc:
        raise unavailable(exc) from exc
    return web.json_response({**_version_json(version), "changed": update is not None})
