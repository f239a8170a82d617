"""(d) Idle connections: server memory per connection, 5,000 connections over 100 rooms.

    python bench/idle.py --server ours|reference|both

Each connection does what a real client does on joining (sync step 1, the
answer to the server's step 1, one awareness state), then stays idle. Server
RSS is read before (after one warm-up client came and went) and once all are
synced and the awareness fan-out has settled; per connection =
(after - before) / connections.
"""

from __future__ import annotations

import asyncio
import time

from common import (
    Meter,
    Peer,
    Results,
    Server,
    awareness_state,
    base_parser,
    close_all,
    connect_many,
    new_client_id,
    open_ws,
    parse_args,
    raise_fd_limit,
    run,
    server_logs,
    servers_of,
    table,
    wait_quiet,
    wait_synced,
)


async def settle(peers: list[Peer], quiet: float = 1.0, bound: float = 20.0) -> float:
    """Wait until no peer has received anything for ``quiet`` seconds; returns seconds waited."""
    t0 = time.monotonic()
    last = -1
    quiet_since = time.monotonic()
    while time.monotonic() - t0 < bound:
        total = sum(p.awareness_in + p.updates for p in peers)
        if total != last:
            last = total
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def bench_server(kind: str, connections: int, rooms: int, idle: float, wait: float) -> dict:
    wait_quiet(max_wait=wait)
    with Server(kind) as srv:
        warm: Peer = await open_ws(
            lambda: Peer(awareness=awareness_state(new_client_id(), "warm")),
            srv.port,
            "/rooms/warmup",
            token=srv.token,
        )  # type: ignore[assignment]
        await asyncio.wait_for(warm.synced, 10)
        await close_all([warm])
        await asyncio.sleep(1.5)
        rss_before = srv.rss_kib()
        factories = [
            (lambda i=i: Peer(awareness=awareness_state(new_client_id(), f"user-{i}")))
            for i in range(connections)
        ]
        paths = [f"/rooms/idle-{i % rooms}" for i in range(connections)]
        meter = Meter(srv)
        clients, errors = await connect_many(
            factories, srv.port, paths, concurrency=100, token=srv.token
        )
        synced, sync_errors = await wait_synced(clients, 60)  # type: ignore[arg-type]
        errors += sync_errors
        connect_seconds = time.monotonic() - meter.t0
        peers: list[Peer] = clients  # type: ignore[assignment]
        await settle(peers)
        meter.stop()
        # Awareness each peer should have seen: every state of its room, its own included.
        per_room = connections // rooms
        awareness_total = sum(p.awareness_in for p in peers)
        await asyncio.sleep(idle)
        rss_after = srv.rss_kib()
        closed_early = sum(1 for p in peers if p.closed.done())
        await close_all(clients, wait=10)
        log = srv.errors_in_log()
        return {
            "connections": connections,
            "rooms": rooms,
            "connected": len(clients),
            "synced": synced,
            "errors": errors[:3] + ([f"{closed_early} closed early"] if closed_early else []),
            "awareness_msgs": awareness_total,
            "awareness_expected_min": rooms * per_room * (per_room + 1) // 2,
            "rss_before_mib": rss_before / 1024,
            "rss_after_mib": rss_after / 1024,
            "kib_per_conn": (rss_after - rss_before) / connections,
            "connect_seconds": connect_seconds,
            "server_cpu_s": meter.server_cpu,
            "gen_cpu_s": meter.gen_cpu,
            "other_cpu_pct": meter.other_pct,
            "server_log": log,
        }


def report(results: dict[str, dict]) -> str:
    headers = [
        "server",
        "synced",
        "RSS before MiB",
        "RSS after MiB",
        "KiB/conn",
        "connect+settle s",
        "srv CPU s",
        "gen CPU s",
        "other CPU%",
        "awareness msgs in",
        "errors",
    ]
    rows = [
        [
            k,
            f"{r['synced']}/{r['connections']}",
            f"{r['rss_before_mib']:.1f}",
            f"{r['rss_after_mib']:.1f}",
            f"{r['kib_per_conn']:.1f}",
            f"{r['connect_seconds']:.1f}",
            f"{r['server_cpu_s']:.1f}",
            f"{r['gen_cpu_s']:.1f}",
            f"{r['other_cpu_pct']:.0f}",
            r["awareness_msgs"],
            "; ".join(r["errors"]) or "none",
        ]
        for k, r in results.items()
    ]
    first = next(iter(results.values()))
    parts = [
        table(
            headers,
            rows,
            f"(d) {first['connections']} idle connections over {first['rooms']} rooms "
            "(handshake + awareness each)",
        )
    ]
    parts += server_logs(results)
    return "\n\n".join(parts)


async def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--idle", type=float, default=3.0, help="seconds idle before RSS is read")
    args = parse_args(p)
    limit = raise_fd_limit(args.connections * 2 + 1024)
    if limit < args.connections + 256:
        raise SystemExit(f"open-file limit {limit} is too low for {args.connections} connections")
    results = {}
    for kind in servers_of(args.server):
        print(f"idle connections on {kind} ...", flush=True)
        results[kind] = await bench_server(
            kind, args.connections, args.rooms, args.idle, args.wait_quiet
        )
    print()
    print(report(results))
    Results("idle", {"results": results}).save(args.json)


if __name__ == "__main__":
    run(main())
