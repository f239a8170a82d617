"""Rooms as things people own and share: create, describe, open up, add members.

Changes to who may do what take effect at once for people already connected:
their connections get their new role (and a notice), or close with 4403 when
they may no longer enter.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from aiohttp import web

from rooms import MEMBER_ROLES, STAFF_ROLES, VISIBILITIES, RoomRole, can_manage, room_role
from store import RoomInfo, RoomStanding, StoreUnavailable

from .apiauth import IDENTITY, allowed_room, require_role
from .auth import person_of
from .errors import json_error, json_object, unavailable
from .keys import GATE, REGISTRY, STORE
from .rolesync import ROLES
from .tokens import subject_uuid
from .upgrade import ROOM_ID, ROOM_ID_RULE
from .ws import check_room_id

MAX_TITLE = 200
MAX_COHORT = 100


def _room_json(room: RoomInfo, role: RoomRole | None, live: tuple[bool, int]) -> dict[str, Any]:
    return {
        "id": room.id,
        "title": room.title,
        "owner": str(room.owner) if room.owner else None,
        "visibility": room.visibility,
        "cohort": room.cohort,
        "created_at": room.created_at.isoformat(),
        "role": role.label if role is not None else None,
        # whether this process holds the room in memory, and its connections (every node)
        "loaded": live[0],
        "connections": live[1],
    }


async def _live(request: web.Request, room_ids: list[str]) -> dict[str, tuple[bool, int]]:
    """Per room: whether this process holds it, and its connections on every node."""
    registry = request.app[REGISTRY]
    counts = await registry.headcounts(room_ids)
    return {r: (r in registry.rooms, counts[r]) for r in room_ids}


def _checked_rules(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Title, visibility and cohort from a body, each checked; only those given."""
    identity = request[IDENTITY]
    rules: dict[str, Any] = {}
    if "title" in body:
        title = body["title"]
        if not isinstance(title, str) or len(title) > MAX_TITLE:
            raise json_error(web.HTTPBadRequest, f"title must be text of at most {MAX_TITLE}")
        rules["title"] = title
    if "visibility" in body:
        if body["visibility"] not in VISIBILITIES:
            raise json_error(
                web.HTTPBadRequest, f"visibility must be one of {', '.join(VISIBILITIES)}"
            )
        rules["visibility"] = body["visibility"]
    if "cohort" in body:
        cohort = body["cohort"]
        if cohort is not None and (not isinstance(cohort, str) or not 1 <= len(cohort) <= 100):
            raise json_error(web.HTTPBadRequest, f"cohort must be null or 1 to {MAX_COHORT} chars")
        if cohort is not None and identity.role not in STAFF_ROLES and cohort != identity.cohort:
            raise json_error(
                web.HTTPForbidden,
                "permission denied: a student may open a room only to their own cohort",
            )
        rules["cohort"] = cohort
    return rules


async def me(request: web.Request) -> web.Response:
    identity = request[IDENTITY]
    return web.json_response(
        {
            "id": identity.user_id,
            "uuid": str(identity.user_uuid),
            "name": identity.name,
            "role": identity.role,
            "cohort": identity.cohort,
            "room": identity.room,
            "expires_at": identity.expires_at,
        }
    )


async def list_rooms(request: web.Request) -> web.Response:
    """The rooms the requester can enter, newest first, with their role in each."""
    identity = request[IDENTITY]
    person = person_of(identity)
    try:
        found = await request.app[STORE].rooms_for(
            person.user_id, staff=identity.role in STAFF_ROLES, cohort=identity.cohort
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    visible = []
    for info, member_role in found:
        if identity.room is not None and info.id != identity.room:
            continue
        standing = RoomStanding(info.owner, info.visibility, info.cohort, member_role)
        role = room_role(person, standing)
        if role is not RoomRole.NONE:
            visible.append((info, role))
    live = await _live(request, [info.id for info, _ in visible])
    rooms = [_room_json(info, role, live[info.id]) for info, role in visible]
    return web.json_response({"rooms": rooms})


async def create_room(request: web.Request) -> web.Response:
    identity = request[IDENTITY]
    body = await json_object(request)
    room_id = body.get("id") or _new_room_id()
    if not isinstance(room_id, str) or not ROOM_ID.match(room_id):
        raise json_error(web.HTTPBadRequest, f"invalid room id: use {ROOM_ID_RULE}")
    if identity.room is not None and identity.room != room_id:
        raise json_error(web.HTTPForbidden, "permission denied: this token is for one room only")
    rules = _checked_rules(request, body)
    visibility = rules.get("visibility", "private")
    cohort = rules.get("cohort", identity.cohort)
    if visibility == "cohort" and not cohort:
        raise json_error(web.HTTPBadRequest, "a room open to a cohort needs a cohort")
    gate = request.app[GATE]
    try:
        await gate.ensure_user(identity)
        room = await request.app[STORE].create_room(
            room_id,
            identity.user_uuid,
            title=rules.get("title", ""),
            visibility=visibility,
            cohort=cohort,
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if room is None:
        raise json_error(web.HTTPConflict, f"room {room_id!r} exists already")
    return web.json_response(_room_json(room, RoomRole.OWNER, (False, 0)), status=201)


def _new_room_id() -> str:
    return secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


async def get_room(request: web.Request) -> web.Response:
    room_id = request.match_info["room_id"]
    check_room_id(room_id)
    role = await require_role(request, room_id, RoomRole.VIEWER, doing="looking at the room")
    try:
        room = await request.app[STORE].get_room(room_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if room is None:
        raise json_error(web.HTTPNotFound, f"no room {room_id!r}")
    return web.json_response(_room_json(room, role, (await _live(request, [room_id]))[room_id]))


async def _managed_room(request: web.Request, doing: str) -> tuple[str, RoomRole]:
    room_id = request.match_info["room_id"]
    check_room_id(room_id)
    role = await require_role(request, room_id, RoomRole.VIEWER, doing=doing)
    if not can_manage(person_of(request[IDENTITY]), role):
        raise json_error(
            web.HTTPForbidden,
            f"permission denied: {doing} in room {room_id!r} needs its owner, an instructor "
            f"or an admin; you are {role.with_article}",
        )
    return room_id, role


async def update_room(request: web.Request) -> web.Response:
    room_id, role = await _managed_room(request, "changing the room")
    rules = _checked_rules(request, await json_object(request))
    store = request.app[STORE]
    try:
        room = await store.get_room(room_id)
        if room is None:
            raise json_error(web.HTTPNotFound, f"no room {room_id!r}")
        visibility = rules.get("visibility", room.visibility)
        cohort = rules.get("cohort", room.cohort)
        if visibility == "cohort" and not cohort:
            raise json_error(web.HTTPBadRequest, "a room open to a cohort needs a cohort")
        room = await store.update_room(
            room_id,
            title=rules.get("title"),
            visibility=rules.get("visibility"),
            cohort=rules.get("cohort"),
            set_cohort="cohort" in rules,
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if room is None:
        raise json_error(web.HTTPNotFound, f"no room {room_id!r}")
    await _refresh_roles(request, room_id, None)
    return web.json_response(_room_json(room, role, (await _live(request, [room_id]))[room_id]))


async def list_members(request: web.Request) -> web.Response:
    room_id = await allowed_room(request, RoomRole.VIEWER, doing="listing members")
    try:
        members = await request.app[STORE].members(room_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    return web.json_response(
        {
            "room": room_id,
            "members": [
                {
                    "user": str(m.user_id),
                    "username": m.username,
                    "name": m.display_name,
                    "role": m.role,
                    "added_at": m.added_at.isoformat(),
                }
                for m in members
            ],
        }
    )


def _member_id(request: web.Request) -> tuple[uuid.UUID, str]:
    """The member's users-table id and name: a UUID, or a token's subject."""
    raw = request.match_info["user"]
    if not 1 <= len(raw) <= 200:
        raise json_error(web.HTTPBadRequest, "a user is a UUID or a token subject of 1 to 200")
    return subject_uuid(raw), raw


async def set_member(request: web.Request) -> web.Response:
    identity = request[IDENTITY]
    user_id, username = _member_id(request)
    if user_id == identity.user_uuid:
        # Whatever one's standing, one's own role is someone else's decision.
        raise json_error(web.HTTPForbidden, "permission denied: you cannot change your own role")
    room_id, role = await _managed_room(request, "changing members")
    body = await json_object(request)
    new_role = body.get("role")
    if new_role not in MEMBER_ROLES:
        raise json_error(web.HTTPBadRequest, f"role must be one of {', '.join(MEMBER_ROLES)}")
    if new_role == "owner" and role < RoomRole.OWNER and identity.role != "admin":
        raise json_error(web.HTTPForbidden, "permission denied: only an owner can add an owner")
    try:
        await request.app[STORE].set_member(
            room_id, user_id, new_role, username=username, added_by=identity.user_uuid
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    await _refresh_roles(request, room_id, user_id)
    return web.json_response({"room": room_id, "user": str(user_id), "role": new_role})


async def remove_member(request: web.Request) -> web.Response:
    identity = request[IDENTITY]
    user_id, _ = _member_id(request)
    room_id = request.match_info["room_id"]
    check_room_id(room_id)
    if user_id != identity.user_uuid:  # leaving a room needs no one's permission
        room_id, _role = await _managed_room(request, "removing members")
    try:
        removed = await request.app[STORE].remove_member(room_id, user_id)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if not removed:
        raise json_error(web.HTTPNotFound, f"{user_id} is not a member of room {room_id!r}")
    await _refresh_roles(request, room_id, user_id)
    return web.Response(status=204)


async def _refresh_roles(request: web.Request, room_id: str, only: uuid.UUID | None) -> None:
    """Give connected people, on every node, their new role in the room, or close them out."""
    await request.app[ROLES].changed(request.app[REGISTRY], room_id, only)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/rooms/{room_id}", get_room)
    app.router.add_patch("/api/rooms/{room_id}", update_room)
    app.router.add_get("/api/rooms/{room_id}/members", list_members)
    app.router.add_put("/api/rooms/{room_id}/members/{user}", set_member)
    app.router.add_delete("/api/rooms/{room_id}/members/{user}", remove_member)
