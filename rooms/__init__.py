"""Rooms: registry and lifecycle, connections, awareness and fan-out."""

from .access import (
    GLOBAL_ROLES,
    MEMBER_ROLES,
    STAFF_ROLES,
    VISIBILITIES,
    Person,
    RoomAccess,
    RoomRole,
    can_control_demo,
    can_edit,
    can_manage,
    can_run,
    refusal,
    room_role,
)
from .closecodes import CloseCode
from .commit import GroupCommit, UpdateLog
from .connection import Connection
from .limits import RoomLimits
from .registry import JoinRefused, RoomRegistry, RoomStore
from .room import DemoLibrary, Room, RoomService, RoomTap

__all__ = [
    "GLOBAL_ROLES",
    "MEMBER_ROLES",
    "STAFF_ROLES",
    "VISIBILITIES",
    "CloseCode",
    "Connection",
    "DemoLibrary",
    "GroupCommit",
    "JoinRefused",
    "Person",
    "Room",
    "RoomAccess",
    "RoomLimits",
    "RoomRegistry",
    "RoomRole",
    "RoomService",
    "RoomStore",
    "RoomTap",
    "UpdateLog",
    "can_control_demo",
    "can_edit",
    "can_manage",
    "can_run",
    "refusal",
    "room_role",
]
