"""The y-websocket wire protocol, sans I/O: bytes in, messages out, and back.

A frame from a client holds one or more messages laid end to end. Every
message keeps the exact bytes it arrived in (``raw``) so that the room can
forward an update to its peers without encoding it again.

Encoding leans on pycrdt's own helpers (``write_var_uint``,
``create_update_message`` ...). Decoding cannot use ``pycrdt.Decoder`` as it
stands: it reads past the end of a truncated frame instead of failing, and a
server must reject such a frame before it touches the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from pycrdt import YMessageType, YSyncMessageType, write_message, write_var_uint

#: The reserved message type of the room extension channel (MessagePack body).
#: y-websocket uses 0-3 and Hocuspocus a few more below 10; 100 clashes with neither.
MESSAGE_ROOM = 100
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
AUTH_PERMISSION_DENIED = 0

#: An empty Yjs update: no structs, empty delete set.
EMPTY_UPDATE = b"\x00\x00"


class MessageKind(IntEnum):
    SYNC_STEP1 = 1
    SYNC_STEP2 = 2
    SYNC_UPDATE = 3
    AWARENESS = 4
    AUTH = 5
    QUERY_AWARENESS = 6
    ROOM = 7


class ProtocolError(ValueError):
    """A frame that does not follow the protocol; the reason is shown to the client."""


@dataclass(frozen=True, slots=True)
class Message:
    kind: MessageKind
    #: The message's own payload (the update, awareness update, state vector or room body).
    payload: bytes
    #: The exact bytes of the whole message inside the frame it came in.
    raw: bytes


class Reader:
    """A bounds-checked lib0 reader over one frame."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def pos(self) -> int:
        return self._pos

    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def var_uint(self) -> int:
        data = self._data
        pos = self._pos
        result = 0
        shift = 0
        while True:
            if pos >= len(data):
                raise ProtocolError("truncated varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 53:
                # lib0 numbers are JavaScript numbers: no more than 53 bits.
                raise ProtocolError("varint too long")
        self._pos = pos
        return result

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self._pos + length
        if end > len(self._data):
            raise ProtocolError(
                f"length prefix says {length} bytes but only {len(self._data) - self._pos} remain"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not valid UTF-8") from exc


_SYNC_KINDS = {
    YSyncMessageType.SYNC_STEP1: MessageKind.SYNC_STEP1,
    YSyncMessageType.SYNC_STEP2: MessageKind.SYNC_STEP2,
    YSyncMessageType.SYNC_UPDATE: MessageKind.SYNC_UPDATE,
}


def parse_frame(frame: bytes) -> list[Message]:
    """Split one binary WebSocket frame into its messages, or raise ProtocolError.

    The whole frame is checked before anything is returned, so a frame that is
    bad anywhere changes nothing.
    """
    if not frame:
        raise ProtocolError("empty frame")
    reader = Reader(frame)
    messages: list[Message] = []
    while not reader.at_end():
        start = reader.pos
        msg_type = reader.var_uint()
        if msg_type == YMessageType.SYNC:
            sub = reader.var_uint()
            kind = _SYNC_KINDS.get(sub)  # type: ignore[call-overload]
            if kind is None:
                raise ProtocolError(f"unknown sync message type {sub}")
            payload = reader.var_bytes()
        elif msg_type == YMessageType.AWARENESS:
            kind = MessageKind.AWARENESS
            payload = reader.var_bytes()
        elif msg_type == MESSAGE_QUERY_AWARENESS:
            kind = MessageKind.QUERY_AWARENESS
            payload = b""
        elif msg_type == MESSAGE_AUTH:
            kind = MessageKind.AUTH
            reader.var_uint()
            payload = reader.var_string().encode()
        elif msg_type == MESSAGE_ROOM:
            kind = MessageKind.ROOM
            payload = reader.var_bytes()
        else:
            raise ProtocolError(f"unknown message type {msg_type}")
        messages.append(Message(kind, payload, frame[start : reader.pos]))
    return messages


def sync_step1(state_vector: bytes) -> bytes:
    return bytes((YMessageType.SYNC, YSyncMessageType.SYNC_STEP1)) + write_message(state_vector)


def sync_step2(update: bytes) -> bytes:
    return bytes((YMessageType.SYNC, YSyncMessageType.SYNC_STEP2)) + write_message(update)


def sync_update(update: bytes) -> bytes:
    return bytes((YMessageType.SYNC, YSyncMessageType.SYNC_UPDATE)) + write_message(update)


def awareness_message(awareness_update: bytes) -> bytes:
    return bytes((YMessageType.AWARENESS,)) + write_message(awareness_update)


def permission_denied(reason: str) -> bytes:
    """The protocol's auth message: y-websocket calls its permission-denied handler."""
    return (
        write_var_uint(MESSAGE_AUTH)
        + write_var_uint(AUTH_PERMISSION_DENIED)
        + write_message(reason.encode("utf-8"))
    )


def room_message(body: bytes) -> bytes:
    return write_var_uint(MESSAGE_ROOM) + write_message(body)


def step2_as_update(message: Message) -> bytes:
    """A client's sync step 2 carries updates the room has not seen; peers get it as an update."""
    return sync_update(message.payload)
