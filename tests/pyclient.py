"""A pycrdt y-websocket client for tests: a real Yjs peer written with pycrdt.

It answers the server's sync step 1, sends its own, applies whatever arrives to
its own ``pycrdt.Doc`` and keeps every raw message it received, so a test can
check both the document and the exact bytes on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
from pycrdt import Doc, Map, Text, TransactionEvent

from crdt import (
    MESSAGE_ROOM,
    MessageKind,
    awareness_message,
    decode_awareness_update,
    encode_awareness_update,
    parse_frame,
    room_message,
    sync_step1,
    sync_step2,
    sync_update,
)


class YClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, *, client_id: int | None = None):
        self.session = session
        self.url = url
        self.doc: Doc = Doc() if client_id is None else Doc(client_id=client_id)
        self.files: Map = self.doc.get("files", type=Map)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.received: list[bytes] = []
        self.room_messages: list[dict[str, Any]] = []
        self.awareness: dict[int, str] = {}
        self.awareness_clock = 0
        self._reader: asyncio.Task[None] | None = None
        self._remote = False
        #: Local edits on their way out: later messages wait for them, keeping the order.
        self._sending: set[asyncio.Task[None]] = set()
        self._sub = self.doc.observe(self._on_local_update)

    @property
    def client_id(self) -> int:
        return self.doc.client_id

    async def connect(self, *, handshake: bool = True, **ws_kwargs: Any) -> YClient:
        self.synced.clear()
        self.closed.clear()
        self.close_code = None
        self.ws = await self.session.ws_connect(self.url, max_msg_size=0, **ws_kwargs)
        self._reader = asyncio.create_task(self._read())
        if handshake:
            await self.send(sync_step1(self.doc.get_state()))
        return self

    async def send(self, message: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(message)

    async def set_awareness(self, state: Any) -> None:
        self.awareness_clock += 1
        body = "null" if state is None else msgspec.json.encode(state).decode()
        update = encode_awareness_update([(self.client_id, self.awareness_clock, body)])
        await self.send(awareness_message(update))

    async def send_room(self, body: dict[str, Any]) -> None:
        """An extension message, sent after the edits made before it (as a real client does)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self.send(room_message(msgspec.msgpack.encode(body)))

    def text(self, path: str) -> str | None:
        value = self.files.get(path)
        return str(value) if isinstance(value, Text) else None

    def file_contents(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.files.items() if isinstance(v, Text)}

    def edit(self, fn: Callable[[Map], None]) -> None:
        """Change the document locally; the update goes to the server."""
        with self.doc.transaction():
            fn(self.files)

    def _on_local_update(self, event: TransactionEvent) -> None:
        if self._remote or self.ws is None or self.ws.closed:
            return
        update = event.update
        if update != b"\x00\x00":
            task = asyncio.get_running_loop().create_task(self.send(sync_update(update)))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    self.received.append(msg.data)
                    await self._handle(msg.data)
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    self.close_reason = msg.extra or ""
                    await self.ws.close()
                    break
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    async def _handle(self, data: bytes) -> None:
        for message in parse_frame(data):
            if message.kind is MessageKind.SYNC_STEP1:
                await self.send(sync_step2(self.doc.get_update(message.payload)))
            elif message.kind in (MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE):
                self._remote = True
                try:
                    self.doc.apply_update(message.payload)
                finally:
                    self._remote = False
                if message.kind is MessageKind.SYNC_STEP2:
                    self.synced.set()
            elif message.kind is MessageKind.AWARENESS:
                for client_id, _clock, state in decode_awareness_update(message.payload):
                    if state == "null":
                        self.awareness.pop(client_id, None)
                    else:
                        self.awareness[client_id] = state
            elif message.kind is MessageKind.ROOM:
                self.room_messages.append(msgspec.msgpack.decode(message.payload))

    async def wait_synced(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``check`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.01)


__all__ = ["MESSAGE_ROOM", "YClient", "eventually"]
