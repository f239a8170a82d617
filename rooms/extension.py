"""The room extension channel: MessagePack bodies on y-websocket message type 100.

Only clients that opted in (``?ext=1`` on the socket URL, or by sending a
``hello`` of their own) get these messages; a plain Yjs client never sees one.
docs/protocol.md documents every message and field.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

PROTOCOL_VERSION = 1


class ClientHello(msgspec.Struct, tag="hello", tag_field="type"):
    name: str | None = None


class Ping(msgspec.Struct, tag="ping", tag_field="type"):
    id: int = 0
    #: The client's own clock when it sent the ping (any unit; echoed back).
    client_time: float = 0.0


class DemoControl(msgspec.Struct, tag="demo", tag_field="type"):
    """A presenter's playback command: load, play, pause, seek or rate."""

    action: str
    demo: str | None = None
    position: float | None = None
    rate: float | None = None


ClientMessage = ClientHello | Ping | DemoControl


class ServerHello(msgspec.Struct, tag="hello", tag_field="type"):
    room: str
    protocol: int
    server_time: float
    connections: int
    document_version: int
    max_message_bytes: int
    #: Who the server thinks this is, and what they may do in the room.
    user: str = ""
    name: str = ""
    user_role: str = ""
    role: str = ""
    can_edit: bool = False


class Access(msgspec.Struct, tag="access", tag_field="type"):
    """The person's room role changed while connected."""

    role: str
    can_edit: bool


class Pong(msgspec.Struct, tag="pong", tag_field="type"):
    id: int
    client_time: float
    server_time: float


class Notice(msgspec.Struct, tag="notice", tag_field="type"):
    level: Literal["info", "warning", "error"]
    code: str
    text: str


class DemoState(msgspec.Struct, tag="demo.state", tag_field="type"):
    """The room's playback state; ``at`` is the server time (ms) it takes effect."""

    demo: str | None
    position: float
    playing: bool
    rate: float
    at: float
    by: str = ""


ServerMessage = ServerHello | Access | Pong | Notice | DemoState

_decoder = msgspec.msgpack.Decoder(ClientMessage)
_encoder = msgspec.msgpack.Encoder()


class ExtensionError(ValueError):
    """A body that is not a known extension message; told to the client as a notice."""


def decode_client(body: bytes) -> ClientMessage:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ExtensionError(f"invalid room message: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ExtensionError(f"room message is not MessagePack: {exc}") from exc


def encode_server(message: ServerMessage) -> bytes:
    return _encoder.encode(message)


def server_time_ms() -> float:
    """The server's wall clock in milliseconds: the base clients sync demo clocks to."""
    return time.time() * 1000.0
