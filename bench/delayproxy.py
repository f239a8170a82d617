"""A loopback TCP proxy that delays each direction on its own, with jitter, keeping order.

Why: clock sync is only tested for real when the two legs of a round trip
differ and wobble, as they do between a classroom's Wi-Fi and a server, and
all of the benchmark runs on one machine. Each *route* listens on its own
loopback port and forwards to the server; every chunk read in one direction
is written ``base + uniform(0, jitter)`` ms after it was read, but never before
the chunk read ahead of it (a TCP stream keeps its order; so does this).

As a module: ``Route`` and ``start_route``. As a process (so that its event
loop is not the load generator's):

    python bench/delayproxy.py --upstream 127.0.0.1:8000 \\
        --route 40,60,8,12 --route 10,15,2,3 [--max-seconds 600]

``--route UP,DOWN,UP_JITTER,DOWN_JITTER`` (ms; up is client -> server). It
prints one JSON line, ``{"ports": [...]}`` (one listening port per route, in
order), then serves until stdin closes, SIGTERM, or ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from dataclasses import dataclass

#: Bytes queued in one direction before reading from that side pauses (back-pressure).
MAX_QUEUED_BYTES = 4 * 1024 * 1024
READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Route:
    """Delays (ms) of one client's link: up is client -> server, down server -> client."""

    up_ms: float
    down_ms: float
    up_jitter_ms: float = 0.0
    down_jitter_ms: float = 0.0

    @property
    def rtt_ms(self) -> float:
        return self.up_ms + self.down_ms

    @property
    def asymmetry_error_ms(self) -> float:
        """What NTP-style sync cannot see on this link: half the legs' difference."""
        return abs(self.down_ms - self.up_ms) / 2.0

    @classmethod
    def parse(cls, text: str) -> Route:
        parts = [float(x) for x in text.split(",")]
        if len(parts) not in (2, 4) or any(x < 0 for x in parts):
            raise ValueError(f"a route is UP,DOWN[,UP_JITTER,DOWN_JITTER] in ms, not {text!r}")
        return cls(*parts)


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    base_ms: float,
    jitter_ms: float,
    rng: random.Random,
) -> None:
    """Copy one direction, each chunk delivered at its due time, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    queued = [0]
    room = asyncio.Event()
    room.set()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:  # end of stream
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            queued[0] -= len(data)
            if queued[0] < MAX_QUEUED_BYTES:
                room.set()
            await writer.drain()

    sender = asyncio.create_task(deliver())
    last_due = 0.0
    try:
        while True:
            await room.wait()
            data = await reader.read(READ_SIZE)
            delay = (base_ms + (rng.uniform(0.0, jitter_ms) if jitter_ms else 0.0)) / 1000.0
            last_due = max(last_due, loop.time() + delay)
            queue.put_nowait((last_due, data))
            if not data:
                break
            queued[0] += len(data)
            if queued[0] >= MAX_QUEUED_BYTES:
                room.clear()
        await sender
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        if not sender.done():
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender


async def start_route(
    route: Route, upstream_host: str, upstream_port: int, *, seed: int = 0
) -> asyncio.Server:
    """Listen on a free loopback port; every connection is proxied through ``route``."""
    rng = random.Random(seed)

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError:
            c_writer.close()
            return
        try:
            await asyncio.gather(
                _pipe(c_reader, s_writer, route.up_ms, route.up_jitter_ms, rng),
                _pipe(s_reader, c_writer, route.down_ms, route.down_jitter_ms, rng),
            )
        except asyncio.CancelledError:
            pass  # the proxy is shutting down: its connections just close
        finally:
            for w in (s_writer, c_writer):
                w.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _main(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.rpartition(":")
    routes = [Route.parse(r) for r in args.route]
    servers = [
        await start_route(r, host or "127.0.0.1", int(port), seed=args.seed + i)
        for i, r in enumerate(routes)
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps({"ports": ports}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # stdin closing means the benchmark that started us is gone
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.create_task(reader.read())
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and not eof.done() and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    eof.cancel()
    for s in servers:
        s.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT to forward to (loopback)")
    p.add_argument("--route", action="append", required=True, help="UP,DOWN[,UP_J,DOWN_J] ms")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args()
    if not args.upstream.startswith(("127.", "localhost:")):
        p.error("loopback only")
    try:
        import uvloop

        uvloop.run(_main(args))
    except ImportError:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
