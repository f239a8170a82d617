"""(g) Synchronized playback: how close viewers' playheads are to the presenter's, and fan-out.

    python bench/sync.py [--viewers 50 --proxied 30] [--big-viewers 1000 --seeks 20]

Part 1, accuracy: one public room, a presenter (an instructor) and ``--viewers``
students, some connected directly, ``--proxied`` of them through
``bench/delayproxy.py`` (a separate process) with their own asymmetric delays
(round trip 20-150 ms, up/down split 35/65 to 65/35, each chunk up to 20 % of
its leg later, order kept). Every client's local clock is off by a random
amount up to +-2 s; each runs ``demos.ClockSync`` on real ``ping``/``pong``
(a burst of 6, then one every 2 s) and a ``demos.Follower`` ticked at 60 Hz.
The presenter loads a generated 10-minute recording, then plays, pauses,
seeks (to times and markers) and changes the rate for about 50 s. Every 100
ms, at one real instant (one machine, one clock), every viewer's displayed
position is compared with the presenter's and with the server's own
(``position_at`` of the state in force): p50/p99/max in ms of demo time.
Each command: from sending it until the last viewer has the new state, and
whether every viewer had it before its ``at``.

Part 2, fan-out: ``--big-viewers`` plain extension clients in one room, no
delay; the presenter seeks ``--seeks`` times in a small demo (the example
recording, ~1 KB) and in a big one (~2.5 MB): time until all have the new
state (p50/p99/max over the seeks), and the bytes the server sent per viewer
per change (everything read from the sockets meanwhile, divided): one small
message, whatever the demo's size.

Our server only: the reference y-websocket server has no demo playback.
"""

from __future__ import annotations

import asyncio
import json
import random
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from common import (
    BENCH,
    QUIET_PCT,
    Meter,
    Peer,
    Server,
    base_parser,
    close_all,
    fmt_ms,
    open_ws,
    parse_args,
    poll_until,
    raise_fd_limit,
    read_var_uint,
    run,
    servers_of,
    table,
    wait_quiet,
)
from delayproxy import Route

from crdt.protocol import room_message
from demos import ClockSync, Follower
from demos.clock import ping_delay
from demos.follower import state_from_message
from demos.playback import LEAD_MS, PlaybackState

ENC = msgspec.msgpack.Encoder()
DEC = msgspec.msgpack.Decoder()
EXAMPLES = BENCH.parent / "demos" / "examples"
FRAME_S = 1 / 60
SAMPLE_EVERY = 6  # frames: a sample every 100 ms
CLOCK_SPREAD_MS = 2000.0
#: The presenter's script, in seconds after the load: (when, command).
SCRIPT: list[tuple[float, dict[str, Any]]] = [
    (1.0, {"action": "play"}),
    (4.0, {"action": "seek", "position": 120.0}),
    (8.0, {"action": "rate", "rate": 1.5}),
    (12.0, {"action": "pause"}),
    (14.0, {"action": "play"}),
    (18.0, {"action": "seek", "marker": "ch10"}),
    (23.0, {"action": "rate", "rate": 2.0}),
    (28.0, {"action": "seek", "position": 60.0}),
    (32.0, {"action": "rate", "rate": 0.5}),
    (36.0, {"action": "pause"}),
    (38.0, {"action": "seek", "position": 400.0}),
    (40.0, {"action": "play"}),
    (44.0, {"action": "rate", "rate": 1.0}),
    (48.0, {"action": "seek", "marker": "ch03"}),
]
SCRIPT_END_S = 52.0


def real_ms() -> float:
    """The one clock of this machine (the server's ``server_time`` is this clock too)."""
    return time.time() * 1000.0


def generated_recording(minutes: float, every: float, chars: int, title: str) -> bytes:
    """A recording: terminal output every ``every`` s, a marker ``chNN`` every 30 s."""
    events: list[dict[str, Any]] = []
    seconds = minutes * 60.0
    n = int(seconds / every)
    line = ("x" * max(0, chars - 1)) + "\n"
    for i in range(n):
        t = round(i * every, 3)
        if i % int(30.0 / every) == 0:
            events.append({"type": "marker", "t": t, "label": f"ch{int(t // 30):02d}"})
        events.append({"type": "output", "t": t, "stream": "stdout", "data": line, "run": "r1"})
    demo = {
        "format": "opencode-live/demo",
        "version": 1,
        "title": title,
        "files": {"main.py": "print('hello')\n"},
        "recording": {"events": events, "snapshots": [], "duration": seconds},
    }
    return json.dumps(demo).encode()


def mint(srv: Server, role: str, user_id: str, name: str) -> str:
    from server.tokens import TokenVerifier, load_or_create_secret

    assert srv._data_dir is not None
    verifier = TokenVerifier(
        secret=load_or_create_secret(Path(srv._data_dir.name)),
        issuer="opencode-live",
        audience="opencode-live",
    )
    return verifier.mint(name=name, role=role, user_id=user_id, ttl_seconds=3600)


async def publish(srv: Server, token: str, demos: dict[str, bytes], rooms: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for demo_id, body in demos.items():
            async with s.put(f"http://127.0.0.1:{srv.port}/api/demos/{demo_id}", data=body) as r:
                if r.status not in (200, 201):
                    raise SystemExit(f"publishing {demo_id} failed: {r.status} {await r.text()}")
        for room in rooms:
            body = {"id": room, "visibility": "public"}
            async with s.post(f"http://127.0.0.1:{srv.port}/api/rooms", json=body) as r:
                if r.status != 201:
                    raise SystemExit(f"creating room {room} failed: {r.status} {await r.text()}")


# --------------------------------------------------------------------------- clients


#: How a ``demo.state`` body starts (msgspec writes the tag first): found without decoding.
DEMO_STATE = b"\xa4type\xaademo.state"


class ExtPeer(Peer):
    """A y-websocket peer opted in to the room extension (``?ext=1``).

    It keeps each ``demo.state`` with its receive time and counts every byte
    read from its socket. With ``lazy`` (the 1,000 viewers) a state is kept
    as the bytes it came in and decoded only when asked for: the receive path
    stays a few operations, so what is timed is the server, not this process.
    """

    lazy = False

    def __init__(self) -> None:
        super().__init__()
        self.states: list[tuple[float, Any]] = []
        self.notices: list[dict[str, Any]] = []
        self.bytes_in = 0
        self.state_frame_bytes = 0
        self.greeted = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        super().data_received(data)

    def on_message(self, payload: bytes, now: int) -> None:
        if payload and payload[0] == 100:
            if self.lazy and DEMO_STATE in payload[:24]:
                self.states.append((real_ms(), payload))
                self.state_frame_bytes = len(payload)
                return
            length, pos = read_var_uint(payload, 1)
            msg = DEC.decode(payload[pos : pos + length])
            if msg.get("type") == "demo.state":
                self.state_frame_bytes = len(payload)
            self.on_room(msg, real_ms())
            return
        super().on_message(payload, now)

    def on_room(self, msg: dict[str, Any], t: float) -> None:
        kind = msg.get("type")
        if kind == "demo.state":
            self.states.append((t, msg))
        elif kind == "hello":
            if not self.greeted.done():
                self.greeted.set_result(t)
        elif kind == "notice":
            self.notices.append(msg)

    def state(self, index: int) -> tuple[float, dict[str, Any]]:
        """The ``index``-th state received: (receive time ms, the message)."""
        t, msg = self.states[index]
        if isinstance(msg, bytes):
            length, pos = read_var_uint(msg, 1)
            msg = DEC.decode(msg[pos : pos + length])
            self.states[index] = (t, msg)
        return t, msg

    def command(self, **body: Any) -> None:
        self.send(room_message(ENC.encode({"type": "demo", **body})))


class LazyPeer(ExtPeer):
    lazy = True


class SyncPeer(ExtPeer):
    """Plus a local clock ``offset_ms`` off, clock sync on real pings, and a follower."""

    def __init__(self, offset_ms: float, route: Route | None) -> None:
        super().__init__()
        self.offset = offset_ms
        self.route = route
        self.sync = ClockSync()
        self.follower = Follower(self.sync)
        self.pings = 0
        self._sent: dict[int, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.pinging = True

    def local_now(self) -> float:
        return real_ms() + self.offset

    def on_room(self, msg: dict[str, Any], t: float) -> None:
        kind = msg.get("type")
        if kind == "pong":
            t0 = self._sent.pop(msg.get("id", -1), None)
            if t0 is not None:
                self.sync.add(t0, msg["server_time"], t + self.offset)
            return
        if kind == "hello" and not self.greeted.done():
            self.sync.seed(msg["server_time"], t + self.offset)
            self._schedule()
        elif kind == "demo.state":
            self.follower.update(msg)
        super().on_room(msg, t)

    def _schedule(self) -> None:
        if self.pinging and self.transport is not None and not self.transport.is_closing():
            delay = ping_delay(self.pings) / 1000.0
            self._timer = asyncio.get_running_loop().call_later(delay, self._ping)

    def _ping(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.pings += 1
        t0 = self.local_now()
        self._sent[self.pings] = t0
        if len(self._sent) > 64:  # pongs that never came: forget the oldest
            self._sent.pop(min(self._sent))
        self.send(room_message(ENC.encode({"type": "ping", "id": self.pings, "client_time": t0})))
        self._schedule()

    def stop(self) -> None:
        self.pinging = False
        if self._timer is not None:
            self._timer.cancel()

    @property
    def clock_error_ms(self) -> float:
        """The estimate's error: the true offset (server minus local) is ``-offset``."""
        est = self.sync.offset
        return float("nan") if est is None else abs(est + self.offset)


# --------------------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def stats_row(label: str, values: list[float]) -> list[Any]:
    return [
        label,
        len(values),
        fmt_ms(pct(values, 0.50)),
        fmt_ms(pct(values, 0.99)),
        fmt_ms(pct(values, 0.999)),
        fmt_ms(max(values) if values else float("nan")),
    ]


@dataclass
class Delivery:
    """One command: when it was sent, and when each client got its state."""

    what: str
    sent: float
    at: float = 0.0
    received: list[float] = field(default_factory=list)

    @property
    def reach_ms(self) -> float:
        return max(self.received) - self.sent if self.received else float("nan")

    @property
    def late(self) -> int:
        return sum(1 for r in self.received if r > self.at)


def describe(body: dict[str, Any]) -> str:
    extra = [f"{k}={v}" for k, v in body.items() if k != "action"]
    return " ".join([body["action"], *extra])


async def deliver(
    presenter: ExtPeer, viewers: list[ExtPeer], body: dict[str, Any], timeout: float
) -> Delivery:
    """Send one command; wait (bounded) until every viewer has the new state."""
    counts = [len(v.states) for v in viewers]
    d = Delivery(describe(body), real_ms())
    presenter.command(**body)
    ok = await poll_until(
        lambda: all(len(v.states) > n for v, n in zip(viewers, counts, strict=True)),
        timeout,
        0.002,
    )
    got = [v.state(n) for v, n in zip(viewers, counts, strict=True) if len(v.states) > n]
    d.received = [t for t, _ in got]
    d.at = got[0][1]["at"] if got else float("nan")
    if not ok:
        d.what += f" ({len(got)}/{len(viewers)} got it)"
    if any(m["at"] != d.at for _, m in got):
        d.what += " (DIFFERENT states)"
    return d


# --------------------------------------------------------------------------- part 1


def truth_at(history: list[tuple[float, dict[str, Any]]], t: float) -> float | None:
    """The server's own position at real time ``t``: the state in force then."""
    current: PlaybackState | None = None
    for _, msg in history:
        if msg["at"] <= t:
            current = state_from_message(msg)
        else:
            break
    return None if current is None else current.position_at(t)


def start_proxy(routes: list[Route], port: int) -> tuple[subprocess.Popen[str], list[int]]:
    """The delay proxy as its own process (its event loop is not ours); its ports."""
    proxy = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "delayproxy.py"),
            "--upstream",
            f"127.0.0.1:{port}",
            "--max-seconds",
            "300",
            *[f"--route={r.up_ms},{r.down_ms},{r.up_jitter_ms},{r.down_jitter_ms}" for r in routes],
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdout is not None
    ready, _, _ = select.select([proxy.stdout], [], [], 20.0)
    line = proxy.stdout.readline() if ready else ""
    if not line:
        stop_proxy(proxy)
        raise RuntimeError("the delay proxy did not start")
    return proxy, json.loads(line)["ports"]


def stop_proxy(proxy: subprocess.Popen[str]) -> None:
    """Our own child, by its handle: SIGTERM, then SIGKILL if it lingers."""
    if proxy.poll() is None:
        proxy.terminate()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(5)


async def part1(srv: Server, args: Any, teacher: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    room = "sync-live"
    lecture = generated_recording(10.0, 0.25, 40, "A 10-minute lecture")
    await publish(srv, teacher, {"lecture": lecture}, [room])
    routes = []
    for _ in range(args.proxied):
        rtt = rng.uniform(20.0, 150.0)
        up = rtt * rng.uniform(0.35, 0.65)
        down = rtt - up
        routes.append(Route(up, down, 0.2 * up, 0.2 * down))
    proxy, ports = start_proxy(routes, srv.port)
    clients: list[SyncPeer] = []
    try:
        path = f"/rooms/{room}?ext=1"
        presenter = await open_ws(
            lambda: SyncPeer(rng.uniform(-CLOCK_SPREAD_MS, CLOCK_SPREAD_MS), None),
            srv.port,
            path,
            token=teacher,
        )
        assert isinstance(presenter, SyncPeer)
        clients.append(presenter)
        direct = args.viewers - args.proxied
        plan: list[tuple[int, Route | None]] = [(srv.port, None)] * direct + [
            (p, r) for p, r in zip(ports, routes, strict=True)
        ]

        async def join(port: int, route: Route | None) -> SyncPeer:
            offset = rng.uniform(-CLOCK_SPREAD_MS, CLOCK_SPREAD_MS)
            peer = await open_ws(lambda: SyncPeer(offset, route), port, path, token=srv.token)
            assert isinstance(peer, SyncPeer)
            return peer

        viewers = list(await asyncio.gather(*(join(p, r) for p, r in plan)))
        clients.extend(viewers)
        await asyncio.wait_for(asyncio.gather(*(c.greeted for c in clients)), 20)
        await asyncio.sleep(1.0)  # the ping bursts (0.25 s + the slowest round trips)
        burst_errors = [v.clock_error_ms for v in viewers]

        meter = Meter(srv)
        load = await deliver(presenter, viewers, {"action": "load", "demo": "lecture"}, 10)
        deliveries = [load]
        everyone = [presenter, *viewers]
        vs_presenter: dict[str, list[float]] = {"direct": [], "proxied": []}
        vs_server: dict[str, list[float]] = {"direct": [], "proxied": [], "presenter": []}
        t_start = time.monotonic()
        stop_at = t_start + SCRIPT_END_S
        sampling_from = t_start + 0.5

        async def ticker() -> None:
            frame = 0
            next_t = time.monotonic()
            limit = int((SCRIPT_END_S + 5) / FRAME_S)
            while time.monotonic() < stop_at and frame < limit:
                t = real_ms()
                for c in everyone:
                    c.follower.tick(t + c.offset)
                if frame % SAMPLE_EVERY == 0 and time.monotonic() >= sampling_from:
                    p = presenter.follower.shown
                    truth = truth_at(presenter.states, t)
                    if truth is not None:
                        vs_server["presenter"].append(abs(p - truth) * 1000.0)
                    for v in viewers:
                        group = "proxied" if v.route is not None else "direct"
                        vs_presenter[group].append(abs(v.follower.shown - p) * 1000.0)
                        if truth is not None:
                            vs_server[group].append(abs(v.follower.shown - truth) * 1000.0)
                frame += 1
                next_t += FRAME_S
                await asyncio.sleep(max(0.0, next_t - time.monotonic()))

        tick_task = asyncio.create_task(ticker())
        for when, body in SCRIPT:
            await asyncio.sleep(max(0.0, t_start + when - time.monotonic()))
            deliveries.append(await deliver(presenter, viewers, body, 5))
        await tick_task
        meter.stop()
        end_errors = [v.clock_error_ms for v in viewers]
        seeks_done = [v.follower.seeks for v in viewers]
        presenter_seeks = presenter.follower.seeks
        notices = sum(len(c.notices) for c in clients)
        for c in clients:
            c.stop()
    finally:
        await close_all(list(clients))
        stop_proxy(proxy)

    every = vs_presenter["direct"] + vs_presenter["proxied"]
    print(
        table(
            ["viewers", "samples", "p50 ms", "p99 ms", "p99.9 ms", "max ms"],
            [
                stats_row(f"all {len(viewers)}", every),
                stats_row(f"direct {direct}", vs_presenter["direct"]),
                stats_row(f"proxied {args.proxied}", vs_presenter["proxied"]),
            ],
            f"\n(g1) |viewer - presenter| displayed position, ms of demo time, sampled every "
            f"{SAMPLE_EVERY * FRAME_S * 1000:.0f} ms for {SCRIPT_END_S:.0f} s at the same "
            f"instants (clocks off by up to +-{CLOCK_SPREAD_MS / 1000:.0f} s; target p99 < 50 ms)",
        )
    )
    print(
        table(
            ["who", "samples", "p50 ms", "p99 ms", "p99.9 ms", "max ms"],
            [
                stats_row("presenter", vs_server["presenter"]),
                stats_row("direct viewers", vs_server["direct"]),
                stats_row("proxied viewers", vs_server["proxied"]),
            ],
            "\n(g1) |displayed - server's position_at(now)|, the same instants",
        )
    )
    asym = [r.asymmetry_error_ms for r in routes]
    print(
        table(
            ["when", "p50 ms", "p99 ms", "max ms"],
            [
                [
                    "after the burst (1 s)",
                    fmt_ms(pct(burst_errors, 0.5)),
                    fmt_ms(pct(burst_errors, 0.99)),
                    fmt_ms(max(burst_errors)),
                ],
                [
                    "at the end",
                    fmt_ms(pct(end_errors, 0.5)),
                    fmt_ms(pct(end_errors, 0.99)),
                    fmt_ms(max(end_errors)),
                ],
                [
                    "proxied links' |down - up|/2",
                    fmt_ms(pct(asym, 0.5)),
                    fmt_ms(pct(asym, 0.99)),
                    fmt_ms(max(asym) if asym else float("nan")),
                ],
            ],
            "\n(g1) clock-offset estimate error |estimate - true offset| over the viewers "
            "(the last row: what no NTP-style probe can see)",
        )
    )
    rows = []
    for d in deliveries:
        rows.append(
            [
                d.what,
                fmt_ms(d.reach_ms),
                fmt_ms(d.at - d.sent),
                f"{len(d.received) - d.late}/{len(viewers)}",
            ]
        )
    print(
        table(
            ["command", "reach all ms", "at - sent ms", "before at"],
            rows,
            f"\n(g1) each command: sent -> the last of {len(viewers)} viewers has its state "
            f"(scheduled {LEAD_MS:.0f} ms ahead)",
        )
    )
    rtts = sorted(r.rtt_ms for r in routes)
    print(
        f"  proxied RTT {rtts[0]:.0f}-{rtts[-1]:.0f} ms (+ up to 20 % jitter per leg); "
        f"follower jumps per viewer: max {max(seeks_done)} (the presenter's own: "
        f"{presenter_seeks}); notices {notices}; srv CPU {meter.server_pct:.0f}%, "
        f"gen CPU {meter.gen_pct:.0f}%, other CPU {meter.other_pct:.0f}%"
    )
    return {
        "viewers": len(viewers),
        "proxied": args.proxied,
        "p50_ms": pct(every, 0.5),
        "p99_ms": pct(every, 0.99),
        "max_ms": max(every) if every else None,
        "p99_direct_ms": pct(vs_presenter["direct"], 0.99),
        "p99_proxied_ms": pct(vs_presenter["proxied"], 0.99),
        "p99_vs_server_ms": pct(vs_server["direct"] + vs_server["proxied"], 0.99),
        "clock_error_p99_ms": pct(end_errors, 0.99),
        "reach_max_ms": max(d.reach_ms for d in deliveries),
        "late": sum(d.late for d in deliveries),
        "commands": len(deliveries),
        "other_cpu_pct": meter.other_pct,
    }


# --------------------------------------------------------------------------- part 2


async def part2(srv: Server, args: Any, teacher: str) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    room = "sync-big"
    small = (EXAMPLES / "hello-recording.demo.json").read_bytes()
    big = generated_recording(10.0, 0.25, 1000, "A big recording")
    demos = {"small": small, "big": big}
    await publish(srv, teacher, demos, [room])
    path = f"/rooms/{room}?ext=1"
    presenter = await open_ws(ExtPeer, srv.port, path, token=teacher)
    assert isinstance(presenter, ExtPeer)
    viewers: list[ExtPeer] = []
    errors: list[str] = []
    sem = asyncio.Semaphore(64)

    async def join() -> None:
        async with sem:
            try:
                peer = await open_ws(LazyPeer, srv.port, path, token=srv.token)
                assert isinstance(peer, ExtPeer)
                viewers.append(peer)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    results: dict[str, Any] = {}
    try:
        await asyncio.wait_for(asyncio.gather(*(join() for _ in range(args.big_viewers))), 120)
        greeted = await poll_until(lambda: all(v.greeted.done() for v in viewers), 30)
        if errors or not greeted:
            print(f"  {len(viewers)} joined, errors: {errors[:3]} greeted: {greeted}")
        rss0 = srv.rss_kib()
        rows = []
        for demo_id, body in demos.items():
            await deliver(presenter, viewers, {"action": "load", "demo": demo_id}, 20)
            duration = float(viewers[0].state(-1)[1]["duration"])
            await asyncio.sleep(0.5)
            before = sum(v.bytes_in for v in viewers)
            meter = Meter(srv)
            seeks: list[Delivery] = []
            for _ in range(args.seeks):
                position = round(rng.uniform(0.0, duration), 3)
                seeks.append(
                    await deliver(presenter, viewers, {"action": "seek", "position": position}, 10)
                )
                await asyncio.sleep(0.2)
            meter.stop()
            sent = sum(v.bytes_in for v in viewers) - before
            per = sent / (len(viewers) * len(seeks))
            reach = [d.reach_ms for d in seeks]
            late = sum(d.late for d in seeks)
            frame = max(v.state_frame_bytes for v in viewers)
            rows.append(
                [
                    f"{demo_id} ({len(body) / 1024:,.0f} KiB)",
                    len(seeks),
                    fmt_ms(pct(reach, 0.5)),
                    fmt_ms(pct(reach, 0.99)),
                    fmt_ms(max(reach)),
                    f"{len(seeks) * len(viewers) - late}/{len(seeks) * len(viewers)}",
                    f"{per:.1f}",
                    frame,
                    f"{meter.server_pct:.0f}",
                    f"{meter.other_pct:.0f}",
                ]
            )
            results[demo_id] = {
                "demo_bytes": len(body),
                "reach_p50_ms": pct(reach, 0.5),
                "reach_p99_ms": pct(reach, 0.99),
                "reach_max_ms": max(reach),
                "late": late,
                "bytes_per_viewer_per_change": per,
                "state_message_bytes": frame,
            }
        print(
            table(
                [
                    "demo",
                    "seeks",
                    "reach all p50 ms",
                    "p99 ms",
                    "max ms",
                    "before at",
                    "bytes/viewer/change",
                    "demo.state msg bytes",
                    "srv CPU%",
                    "other CPU%",
                ],
                rows,
                f"\n(g2) {len(viewers)} viewers in one room, no delay: a seek, sent -> the last "
                f"viewer has the new state; bytes read by each viewer per change "
                f"(server RSS {rss0 / 1024:.0f} MiB with them connected)",
            )
        )
        results["viewers"] = len(viewers)
        results["join_errors"] = len(errors)
        results["rss_mib"] = rss0 / 1024
    finally:
        await close_all([presenter, *viewers], wait=5)
    return results


# --------------------------------------------------------------------------- main


async def main_async(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    parts = {p.strip() for p in args.part.split(",")}
    extra = ["--max-connections-per-room", str(args.big_viewers + 100)]
    wait_quiet(QUIET_PCT, args.wait_quiet)
    with Server("ours", extra) as srv:
        teacher = mint(srv, "instructor", "ines", "Ines")
        if "1" in parts:
            out["part1"] = await part1(srv, args, teacher)
        if "2" in parts:
            out["part2"] = await part2(srv, args, teacher)
        log = srv.errors_in_log()
        if log:
            print(f"\nour server printed:\n{log[-1500:]}")
    return out


def main() -> int:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--viewers", type=int, default=50, help="part 1 viewers")
    p.add_argument("--proxied", type=int, default=30, help="of them, behind the delay proxy")
    p.add_argument("--big-viewers", type=int, default=1000, help="part 2 viewers")
    p.add_argument("--seeks", type=int, default=20, help="part 2 seeks per demo")
    p.add_argument("--part", default="1,2", help="1 (accuracy), 2 (1,000 viewers), or both")
    p.add_argument("--seed", type=int, default=7)
    args = parse_args(p)
    if not 0 <= args.proxied <= args.viewers:
        p.error("--proxied must be between 0 and --viewers")
    kinds = servers_of(args.server)
    if "ours" not in kinds:
        print("sync: our server only (the reference server has no demo playback)")
        return 0
    raise_fd_limit(args.big_viewers * 2 + 1024)
    started = time.monotonic()
    figures = run(main_async(args))
    print(f"\n(sync: {time.monotonic() - started:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps({"bench": "sync", "results": {"ours": figures}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
