"""Rooms: registry and lifecycle, connections, awareness, fan-out and the cluster bus."""

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
from .bus import Bus, Kind, LocalBus
from .closecodes import CloseCode
from .cluster import RoomLink
from .commit import GroupCommit, UpdateLog
from .connection import Connection
from .limits import RoomLimits
from .redisbus import RedisBus
from .registry import JoinRefused, RoomRegistry, RoomStore
from .room import DemoLibrary, RemoteService, Room, RoomService, RoomTap
from .watermark import Watermark

__all__ = [
    "GLOBAL_ROLES",
    "MEMBER_ROLES",
    "STAFF_ROLES",
    "VISIBILITIES",
    "Bus",
    "CloseCode",
    "Connection",
    "DemoLibrary",
    "GroupCommit",
    "JoinRefused",
    "Kind",
    "LocalBus",
    "Person",
    "RedisBus",
    "RemoteService",
    "Room",
    "RoomAccess",
    "RoomLimits",
    "RoomLink",
    "RoomRegistry",
    "RoomRole",
    "RoomService",
    "RoomStore",
    "RoomTap",
    "UpdateLog",
    "Watermark",
    "can_control_demo",
    "can_edit",
    "can_manage",
    "can_run",
    "refusal",
    "room_role",
]
