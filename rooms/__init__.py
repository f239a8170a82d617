"""Rooms: registry and lifecycle, connections, awareness and fan-out."""

from .closecodes import CloseCode
from .commit import GroupCommit, UpdateLog
from .connection import Connection
from .limits import RoomLimits
from .registry import JoinRefused, RoomRegistry, RoomStore
from .room import Room

__all__ = [
    "CloseCode",
    "Connection",
    "GroupCommit",
    "JoinRefused",
    "Room",
    "RoomLimits",
    "RoomRegistry",
    "RoomStore",
    "UpdateLog",
]
