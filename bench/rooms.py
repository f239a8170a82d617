"""(b) Many small rooms: 500 rooms x 4 clients, every client editing at 1 edit/s.

    python bench/rooms.py --server ours|reference|both

2,000 edits/s in all, each fanned out to the 4 clients of its room (both
servers echo an update to its sender too, so 8,000 deliveries/s). Each client
does the y-websocket handshake, sends an awareness state, then edits on its
own 1-second clock (phases spread at random). After ``--warmup`` seconds the
edits of the next ``--duration`` seconds are measured: p50/p99/max latency,
delivered/expected, server CPU% over the window and server RSS at its end.
"""

from __future__ import annotations

import asyncio
import random
import time

from common import (
    LatencyStats,
    Meter,
    Peer,
    Results,
    Server,
    TextWriter,
    awareness_state,
    base_parser,
    close_all,
    connect_many,
    fmt_ms,
    latencies,
    parse_args,
    poll_until,
    raise_fd_limit,
    run,
    server_logs,
    servers_of,
    table,
    wait_quiet,
    wait_synced,
)

from crdt.protocol import sync_update

DRAIN_SECONDS = 3.0
PAUSE_SECONDS = 0.3


class Editor(Peer):
    """A client that also writes: stamped appends to its own text, once a period."""

    def __init__(self, sink: list[tuple[int, bytes]], counter: list[int], name: str) -> None:
        self.tw = TextWriter()
        super().__init__(sink, counter, awareness=awareness_state(self.tw.client_id, name))

    def edit(self) -> None:
        self.send(sync_update(self.tw.append(b"@%d#" % time.monotonic_ns())))


async def edit_loop(
    client: Editor, period: float, start: float, stop: float, counts: list[int]
) -> None:
    """Edit every ``period`` seconds from ``start`` (loop time) until ``stop``.

    ``counts[0]`` counts the edits sent.
    """
    loop = asyncio.get_running_loop()
    t = start
    while t < stop:
        delay = t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if client.closed.done():
            return
        client.edit()
        counts[0] += 1
        t += period


async def bench_server(
    kind: str, rooms: int, per_room: int, warmup: float, duration: float, wait: float
) -> dict:
    wait_quiet(max_wait=wait)
    with Server(kind) as srv:
        await asyncio.sleep(1.0)
        rss_idle = srv.rss_kib()
        sink: list[tuple[int, bytes]] = []
        counter = [0]
        n = rooms * per_room
        factories = [(lambda i=i: Editor(sink, counter, f"user-{i}")) for i in range(n)]
        paths = [f"/rooms/small-{i // per_room}" for i in range(n)]
        t_conn = time.monotonic()
        clients, errors = await connect_many(
            factories, srv.port, paths, concurrency=64, token=srv.token
        )
        synced, sync_errors = await wait_synced(clients, 60)  # type: ignore[arg-type]
        errors += sync_errors
        connect_seconds = time.monotonic() - t_conn
        editors: list[Editor] = clients  # type: ignore[assignment]
        for c in editors:  # each client's first item (no stamp), then stamped appends
            c.send(sync_update(c.tw.first()))
        await asyncio.sleep(1.0)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2
        measure_from = t0 + warmup
        warm_counts = [0]
        meas_counts = [0]
        # Warm-up edits, then the measured ones, on the same per-client phase.
        phases = [random.random() for _ in editors]
        tasks = [
            loop.create_task(edit_loop(c, 1.0, t0 + ph, measure_from, warm_counts))
            for c, ph in zip(editors, phases, strict=True)
        ]
        await asyncio.gather(*tasks)
        # A short pause lets the warm-up deliveries land; the measured edits follow.
        start = measure_from + PAUSE_SECONDS
        await asyncio.sleep(start - loop.time())
        base = counter[0]
        since = time.monotonic_ns()
        meter = Meter(srv)
        tasks = [
            loop.create_task(edit_loop(c, 1.0, start + ph, start + duration, meas_counts))
            for c, ph in zip(editors, phases, strict=True)
        ]
        await asyncio.gather(*tasks)
        expected = meas_counts[0] * per_room
        await poll_until(lambda: counter[0] - base >= expected, DRAIN_SECONDS, 0.01)
        meter.stop()
        rss_loaded = srv.rss_kib()
        closed_early = sum(1 for c in editors if c.closed.done())
        await close_all(clients)  # type: ignore[arg-type]
        lat = latencies(sink, since)
        stats = LatencyStats.of(lat)
        log = srv.errors_in_log()
        return {
            "rooms": rooms,
            "clients": n,
            "connected": len(clients),
            "synced": synced,
            "connect_seconds": connect_seconds,
            "errors": errors[:3]
            + ([f"{closed_early} clients closed early"] if closed_early else []),
            "edits": meas_counts[0],
            "edits_per_s": meas_counts[0] / duration,
            "expected": expected,
            "delivered": len(lat),
            "p50_ms": stats.p50,
            "p99_ms": stats.p99,
            "max_ms": stats.max,
            "rss_idle_mib": rss_idle / 1024,
            "rss_mib": rss_loaded / 1024,
            "server_cpu_pct": meter.server_pct,
            "gen_cpu_pct": meter.gen_pct,
            "other_cpu_pct": meter.other_pct,
            "server_log": log,
        }


def report(results: dict[str, dict]) -> str:
    headers = [
        "server",
        "clients",
        "edits/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "delivered/expected",
        "RSS MiB",
        "RSS idle MiB",
        "srv CPU%",
        "gen CPU%",
        "other CPU%",
        "connect s",
        "errors",
    ]
    rows = []
    for k, r in results.items():
        rows.append(
            [
                k,
                f"{r['synced']}/{r['clients']}",
                f"{r['edits_per_s']:.0f}",
                fmt_ms(r["p50_ms"]),
                fmt_ms(r["p99_ms"]),
                fmt_ms(r["max_ms"]),
                f"{r['delivered']}/{r['expected']}",
                f"{r['rss_mib']:.0f}",
                f"{r['rss_idle_mib']:.0f}",
                f"{r['server_cpu_pct']:.0f}",
                f"{r['gen_cpu_pct']:.0f}",
                f"{r['other_cpu_pct']:.0f}",
                f"{r['connect_seconds']:.1f}",
                "; ".join(r["errors"]) or "none",
            ]
        )
    first = next(iter(results.values()))
    parts = [
        table(
            headers,
            rows,
            f"(b) {first['rooms']} rooms x {first['clients'] // first['rooms']} "
            "clients, each client 1 edit/s",
        )
    ]
    parts += server_logs(results)
    return "\n\n".join(parts)


async def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--rooms", type=int, default=500)
    p.add_argument("--per-room", type=int, default=4)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=10.0)
    args = parse_args(p)
    raise_fd_limit(args.rooms * args.per_room * 2 + 1024)
    results = {}
    for kind in servers_of(args.server):
        print(f"rooms on {kind} ...", flush=True)
        results[kind] = await bench_server(
            kind, args.rooms, args.per_room, args.warmup, args.duration, args.wait_quiet
        )
    print()
    print(report(results))
    Results("rooms", {"results": results}).save(args.json)


if __name__ == "__main__":
    run(main())
