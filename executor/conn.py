"""The executor's end of one container's agent: the hijacked exec socket.

A reader thread demultiplexes Docker's stream (8-byte headers: stream, size),
takes the agent's frames out of stdout, and hands each batch (all frames of
one ``recv``) to the event loop with ``call_soon_threadsafe``. A writer thread
sends what the loop queues, so a stuck agent never blocks the loop.

The agent runs as the same user as the programs, so what it sends is bounded
here: a frame larger than ``MAX_FRAME`` ends the connection, and run output
past the run's budget is dropped in this thread, whatever the agent does.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("opencode_live.executor")

HEADER = struct.Struct(">cI")
DOCKER_HEADER = struct.Struct(">BxxxI")
MAX_FRAME = 8 * 1024 * 1024
STDERR_TAIL = 4096

Frames = list[tuple[bytes, bytes]]


class AgentConn:
    def __init__(
        self,
        sock: socket.socket,
        keepalive: Any,
        loop: asyncio.AbstractEventLoop,
        on_frames: Callable[[Frames], None],
        on_closed: Callable[[str, bytes], None],
        name: str,
    ) -> None:
        self._sock = sock
        self._keepalive = keepalive
        self._loop = loop
        self._on_frames = on_frames
        self._on_closed = on_closed
        self.name = name
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.closed = False
        # output budget of the current run; written by the loop before it sends R
        self._budget = 0
        self._seen = 0

    def start(self) -> None:
        threading.Thread(
            target=self._read_loop, name=f"agent-read-{self.name}", daemon=True
        ).start()
        threading.Thread(
            target=self._write_loop, name=f"agent-write-{self.name}", daemon=True
        ).start()

    def new_run(self, output_budget: int) -> None:
        """Called on the loop before a run's R: its output past the budget is dropped here."""
        self._seen = 0
        self._budget = output_budget

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        if not self.closed:
            self._queue.put(HEADER.pack(kind, len(payload)) + payload)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.put(None)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- threads ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            try:
                self._sock.sendall(data)
            except OSError:
                return  # the reader sees the end too

    def _post(self, fn: Callable[..., None], *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _read_loop(self) -> None:
        demux = bytearray()
        stream = bytearray()
        err_tail = b""
        reason = (
            "the run's supervisor in the container ended (killed by the program, "
            "or the container or the engine went away)"
        )
        try:
            while True:
                data = self._sock.recv(1 << 16)
                if not data:
                    break
                demux += data
                pos = 0
                while len(demux) - pos >= DOCKER_HEADER.size:
                    kind, size = DOCKER_HEADER.unpack_from(demux, pos)
                    if len(demux) - pos - DOCKER_HEADER.size < size:
                        break
                    start = pos + DOCKER_HEADER.size
                    if kind == 1:
                        stream += demux[start : start + size]
                    elif kind == 2:
                        err_tail = (err_tail + bytes(demux[start : start + size]))[-STDERR_TAIL:]
                    pos = start + size
                del demux[:pos]
                frames: Frames = []
                pos = 0
                while len(stream) - pos >= HEADER.size:
                    kind_b, size = HEADER.unpack_from(stream, pos)
                    if size > MAX_FRAME:
                        raise ValueError(f"agent frame of {size} bytes")
                    if len(stream) - pos - HEADER.size < size:
                        break
                    start = pos + HEADER.size
                    pos = start + size
                    if kind_b in (b"O", b"E"):
                        if self._seen > self._budget:
                            continue
                        self._seen += size
                    frames.append((kind_b, bytes(stream[start:pos])))
                del stream[:pos]
                if frames and not self._post(self._on_frames, frames):
                    return
        except (OSError, ValueError) as exc:
            if not self.closed:
                reason = f"the agent's connection failed: {exc}"
        finally:
            self.closed = True
            self._queue.put(None)
            try:
                self._sock.close()
            except OSError:
                pass
            self._keepalive = None
            self._post(self._on_closed, reason, err_tail)
