"""(e) Join burst: 100 clients join one fresh room at the same instant.

    python bench/herd.py --server ours|reference|both

All clients start their TCP connect in the same loop iteration, then do the
y-websocket handshake and send an awareness state. Counts the clients fully
synced (sync step 2 received and applied to a pycrdt Doc) within ``--bound``
seconds, with p50/max join time. Then one of them inserts a stamped edit and
the others must all receive it (a check that the room works after the burst).
Runs ``--rounds`` times, each in a new room.
"""

from __future__ import annotations

import asyncio
import time

from common import (
    DocPeer,
    LatencyStats,
    Meter,
    Peer,
    Results,
    Server,
    TextWriter,
    awareness_state,
    base_parser,
    close_all,
    latencies,
    new_client_id,
    open_ws,
    parse_args,
    poll_until,
    run,
    servers_of,
    table,
    wait_quiet,
)

from crdt.protocol import sync_update


async def one_round(srv: Server, n: int, bound: float, room: str) -> dict:
    sink: list[tuple[int, bytes]] = []
    path = f"/rooms/{room}"
    peers: list[DocPeer] = []
    errors: list[str] = []

    async def join(i: int) -> float | None:
        t0 = time.perf_counter()
        try:
            peer: DocPeer = await open_ws(
                lambda: DocPeer(sink=sink, awareness=awareness_state(new_client_id(), f"u{i}")),
                srv.port,
                path,
                timeout=bound,
                token=srv.token,
            )  # type: ignore[assignment]
            peers.append(peer)
            await asyncio.wait_for(
                asyncio.shield(peer.synced), max(0.01, bound - (time.perf_counter() - t0))
            )
            return time.perf_counter() - t0
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return None

    meter = Meter(srv)
    times = await asyncio.gather(*(join(i) for i in range(n)))
    meter.stop()
    ok_times = sorted(t for t in times if t is not None)
    # The room works after the burst: one edit reaches every other client.
    received = 0
    if ok_times:
        await asyncio.sleep(0.5)
        writer = peers[0]
        tw = TextWriter()
        writer.send(sync_update(tw.first()))
        await asyncio.sleep(0.2)
        writer.send(sync_update(tw.append(b"@%d#" % time.monotonic_ns())))
        await poll_until(lambda: len(latencies(sink)) >= len(peers), 5.0, 0.01)
        received = len(latencies(sink))
    closed_early = sum(1 for p in peers if p.closed.done())
    await close_all(peers)  # type: ignore[arg-type]
    stats = LatencyStats.of(latencies(sink))
    return {
        "clients": n,
        "synced": len(ok_times),
        "p50_ms": ok_times[len(ok_times) // 2] * 1000 if ok_times else float("nan"),
        "max_ms": ok_times[-1] * 1000 if ok_times else float("nan"),
        "edit_received": received,
        "edit_max_ms": stats.max,
        "errors": errors[:3] + ([f"{closed_early} closed early"] if closed_early else []),
        "server_cpu_ms": meter.server_cpu * 1000,
        "gen_cpu_ms": meter.gen_cpu * 1000,
        "other_cpu_pct": meter.other_pct,
    }


async def bench_server(kind: str, n: int, bound: float, rounds: int, wait: float) -> list[dict]:
    wait_quiet(max_wait=wait)
    out = []
    with Server(kind) as srv:
        warm: Peer = await open_ws(Peer, srv.port, "/rooms/warmup", token=srv.token)  # type: ignore[assignment]
        await asyncio.wait_for(warm.synced, 10)
        await close_all([warm])
        for r in range(rounds):
            out.append(await one_round(srv, n, bound, f"herd-{r}"))
            await asyncio.sleep(0.5)
        log = srv.errors_in_log()
        for r in out:
            r["server_log"] = log
    return out


def report(results: dict[str, list[dict]]) -> str:
    headers = [
        "server",
        "round",
        "synced in bound",
        "p50 ms",
        "max ms",
        "edit reached",
        "srv CPU ms",
        "gen CPU ms",
        "other CPU%",
        "errors",
    ]
    rows = []
    rounds = max(len(v) for v in results.values())
    for i in range(rounds):
        for k, v in results.items():
            r = v[i]
            rows.append(
                [
                    k,
                    i + 1,
                    f"{r['synced']}/{r['clients']}",
                    f"{r['p50_ms']:.0f}",
                    f"{r['max_ms']:.0f}",
                    f"{r['edit_received']}/{r['synced']}",
                    f"{r['server_cpu_ms']:.0f}",
                    f"{r['gen_cpu_ms']:.0f}",
                    f"{r['other_cpu_pct']:.0f}",
                    "; ".join(r["errors"]) or "none",
                ]
            )
    first = next(iter(results.values()))[0]
    parts = [table(headers, rows, f"(e) {first['clients']} clients join one fresh room at once")]
    for k, v in results.items():
        if v and v[0]["server_log"]:
            parts.append(f"{k} server printed:\n{v[0]['server_log'][-1500:]}")
    return "\n\n".join(parts)


async def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--bound", type=float, default=10.0, help="seconds a client has to be synced")
    p.add_argument("--rounds", type=int, default=3)
    args = parse_args(p)
    results = {}
    for kind in servers_of(args.server):
        print(f"join burst on {kind} ...", flush=True)
        results[kind] = await bench_server(
            kind, args.clients, args.bound, args.rounds, args.wait_quiet
        )
    print()
    print(report(results))
    Results("herd", {"results": results}).save(args.json)


if __name__ == "__main__":
    run(main())
