"""The y-websocket protocol and the room document, sans I/O (pycrdt only)."""

from .awareness import (
    AwarenessChange,
    AwarenessTable,
    decode_awareness_update,
    encode_awareness_update,
)
from .document import FILES, RoomDocument, files_of
from .protocol import (
    MESSAGE_ROOM,
    Message,
    MessageKind,
    ProtocolError,
    awareness_message,
    parse_frame,
    permission_denied,
    room_message,
    step2_as_update,
    sync_step1,
    sync_step2,
    sync_update,
)
from .split import split_update

__all__ = [
    "FILES",
    "MESSAGE_ROOM",
    "AwarenessChange",
    "AwarenessTable",
    "Message",
    "MessageKind",
    "ProtocolError",
    "RoomDocument",
    "awareness_message",
    "decode_awareness_update",
    "encode_awareness_update",
    "files_of",
    "parse_frame",
    "permission_denied",
    "room_message",
    "split_update",
    "step2_as_update",
    "sync_step1",
    "sync_step2",
    "sync_update",
]
