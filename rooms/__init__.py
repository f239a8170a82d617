"""Rooms: registry and lifecycle, connections, awareness and fan-out."""

from .closecodes import CloseCode
from .connection import Connection
from .limits import RoomLimits
from .registry import JoinRefused, RoomLoader, RoomRegistry
from .room import Room

__all__ = [
    "CloseCode",
    "Connection",
    "JoinRefused",
    "Room",
    "RoomLimits",
    "RoomLoader",
    "RoomRegistry",
]
