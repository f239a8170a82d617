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


class RunRequest(msgspec.Struct, tag="run", tag_field="type"):
    """Run the room's current files (or grade them against ``tests``)."""

    entry: str | None = None
    language: str | None = None
    stdin: str = ""


class RunInput(msgspec.Struct, tag="run.input", tag_field="type"):
    """Text for a running program's standard input; ``eof`` closes it."""

    run: str
    data: str = ""
    eof: bool = False


class RunStop(msgspec.Struct, tag="run.stop", tag_field="type"):
    run: str


RunMessage = RunRequest | RunInput | RunStop
ClientMessage = ClientHello | Ping | DemoControl | RunRequest | RunInput | RunStop


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


class RunStarted(msgspec.Struct, tag="run.started", tag_field="type"):
    run: str
    by: str
    language: str
    entry: str
    #: Server time (ms) the run started.
    at: float


class RunOutput(msgspec.Struct, tag="run.output", tag_field="type"):
    run: str
    stream: Literal["stdout", "stderr"]
    data: str
    #: Chunks of one run are numbered from 0, in the order printed.
    seq: int


class RunTest(msgspec.Struct):
    name: str
    passed: bool
    message: str = ""


class RunExit(msgspec.Struct, tag="run.exit", tag_field="type"):
    run: str
    status: str
    exit_code: int | None
    signal: int | None
    wall_ms: float
    cpu_ms: float
    peak_memory_bytes: int
    output_truncated: bool
    message: str
    tests: list[RunTest] | None = None
    score: float | None = None


ServerMessage = (
    ServerHello | Access | Pong | Notice | DemoState | RunStarted | RunOutput | RunExit
)

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
