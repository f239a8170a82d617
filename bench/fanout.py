"""(a) Fan-out: one room, N subscribers, one writer inserting small edits at a fixed rate.

    python bench/fanout.py --server ours|reference|both

Part 1, a matrix: 50 and 200 subscribers x 20, 100 and 500 edits/s, each for
``--duration`` seconds: p50/p99/max delivery latency (writer's send to a
subscriber's receive) and delivered messages/s.

Part 2, a ramp with 50 subscribers: 500, 1000, 1500, 2000, 3000, ... edits/s
(``--step-duration`` seconds each) until p99 >= 100 ms, a message is lost, the
writer cannot keep the rate or the generator itself runs out of CPU; prints the
highest rate that passed.

Every phase uses a fresh room and fresh connections on one server process.
Subscribers do the real y-websocket handshake and send an awareness state;
they do not apply updates, they find the writer's ``@<ns>#`` stamp in them.

    python bench/fanout.py --nodes 3 [--redis-url URL] [--dsn DSN]

Multi-node mode (our server only): three ``serve`` processes sharing rooms
through Redis (a key prefix of the benchmark's own, keys deleted at the end)
on one scratch Postgres database (created on ``--dsn``'s server, dropped at the
end). The writer is on node 0; the same number of subscribers is either all on
node 0 ("one node") or spread evenly over the three nodes ("3 nodes"), at each
``--node-rates`` rate. Latency is reported apart for subscribers on the writer's
node and on the other nodes; "crossing a node" is the other nodes' figure minus
the writer's node's in the same phase. A single process without Redis on its
own scratch database ("1 proc, no Redis") is measured too, for reference.
"""

from __future__ import annotations

import asyncio
import os
import time

from common import (
    QUIET_PCT,
    Cluster,
    LatencyStats,
    Meter,
    Peer,
    Server,
    TextWriter,
    awareness_state,
    base_parser,
    close_all,
    connect_many,
    fmt_ms,
    latencies,
    new_client_id,
    open_ws,
    parse_args,
    poll_until,
    run,
    servers_of,
    table,
    wait_quiet,
    wait_synced,
)

from crdt.protocol import sync_update

MATRIX_SUBS = (50, 200)
MATRIX_RATES = (20, 100, 500)
RAMP_SUBS = 50
RAMP_RATES = (500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000)
P99_LIMIT_MS = 100.0
GEN_CPU_LIMIT = 90.0  # % of one core: above it the generator may be what is measured
DRAIN_SECONDS = 3.0
OTHER_CPU_RETRY = 30.0  # % of a core used by other processes that makes a failed step run again

_phase_no = 0


async def write_at(writer: Peer, tw: TextWriter, rate: float, duration: float) -> tuple[int, float]:
    """Send ``rate * duration`` stamped edits on an absolute schedule; returns (sent, seconds)."""
    total = int(rate * duration)
    send = writer.send
    append = tw.append
    mono = time.monotonic
    start = mono()
    i = 0
    while i < total:
        due = min(total, int((mono() - start) * rate) + 1)
        while i < due:
            send(sync_update(append(b"@%d#" % time.monotonic_ns())))
            i += 1
        # Sleep until the next edit is due, but at least a millisecond (the
        # loop's timer resolution): a shorter sleep would spin, and every edit
        # due meanwhile goes out in the next burst, stamped when it is sent.
        await asyncio.sleep(max(0.001, start + i / rate - mono()))
    return total, mono() - start


async def phase(srv: Server, subs: int, rate: int, duration: float) -> dict:
    global _phase_no
    _phase_no += 1
    path = f"/rooms/fanout-{_phase_no}-{subs}-{rate}"
    sink: list[tuple[int, bytes]] = []
    counter = [0]
    factories = [
        (lambda: Peer(sink, counter, awareness=awareness_state(new_client_id(), "sub")))
        for _ in range(subs)
    ]
    peers, errors = await connect_many(
        factories, srv.port, [path] * subs, concurrency=50, token=srv.token
    )
    synced, sync_errors = await wait_synced(peers, 20)  # type: ignore[arg-type]
    errors += sync_errors
    writer = await open_ws(
        lambda: Peer(awareness=awareness_state(new_client_id(), "writer")),
        srv.port,
        path,
        token=srv.token,
    )
    await asyncio.wait_for(writer.synced, 10)  # type: ignore[attr-defined]
    tw = TextWriter()
    writer.send(sync_update(tw.first()))  # the item later edits hang off (no stamp)
    await asyncio.sleep(0.3)
    base = counter[0]
    since = time.monotonic_ns()
    meter = Meter(srv)
    t0 = time.monotonic()
    sent, send_seconds = await write_at(writer, tw, rate, duration)  # type: ignore[arg-type]
    expected = sent * len(peers)
    await poll_until(lambda: counter[0] - base >= expected, DRAIN_SECONDS)
    t_done = time.monotonic()
    meter.stop()
    closed_early = sum(1 for p in peers if p.closed.done())
    await close_all([*peers, writer])
    lat = latencies(sink, since)
    delivered = len(lat)
    stats = LatencyStats.of(lat)
    achieved = sent / send_seconds
    return {
        "subs": subs,
        "rate": rate,
        "connected": len(peers),
        "synced": synced,
        "errors": errors[:3]
        + ([f"{closed_early} subscribers closed early"] if closed_early else []),
        "sent": sent,
        "achieved_rate": achieved,
        "expected": expected,
        "delivered": delivered,
        "p50_ms": stats.p50,
        "p99_ms": stats.p99,
        "max_ms": stats.max,
        "msgs_per_s": delivered / (t_done - t0),
        "server_cpu_pct": meter.server_pct,
        "gen_cpu_pct": meter.gen_pct,
        "other_cpu_pct": meter.other_pct,
        "rss_mib": srv.rss_kib() / 1024,
    }


def verdict(r: dict) -> str:
    if r["errors"] or r["synced"] < r["subs"]:
        return "client errors"
    if r["delivered"] < r["expected"]:
        return "lost messages"
    if r["achieved_rate"] < 0.97 * r["rate"]:
        return "writer behind"
    if r["gen_cpu_pct"] > GEN_CPU_LIMIT:
        return "generator-bound"
    if r["p99_ms"] >= P99_LIMIT_MS:
        return "p99 >= 100 ms"
    return "ok"


async def bench_server(
    kind: str, duration: float, step_duration: float, ramp: bool, wait: float
) -> dict:
    out: dict = {"matrix": [], "ramp": [], "max_rate": None, "stop_reason": None}
    wait_quiet(max_wait=wait)
    with Server(kind) as srv:
        for subs in MATRIX_SUBS:
            for rate in MATRIX_RATES:
                r = await phase(srv, subs, rate, duration)
                if r["other_cpu_pct"] > OTHER_CPU_RETRY and wait_quiet(max_wait=wait) < QUIET_PCT:
                    # Something else took the CPU meanwhile: measure again, once.
                    r = await phase(srv, subs, rate, duration)
                r["verdict"] = verdict(r)
                out["matrix"].append(r)
                print(
                    f"  [{kind}] {subs} subs x {rate}/s: p99 {fmt_ms(r['p99_ms'])} ms, "
                    f"{r['delivered']}/{r['expected']} delivered, {r['verdict']}",
                    flush=True,
                )
        if ramp:
            for rate in RAMP_RATES:
                r = await phase(srv, RAMP_SUBS, rate, step_duration)
                r["verdict"] = verdict(r)
                if r["verdict"] != "ok" and r["other_cpu_pct"] > OTHER_CPU_RETRY:
                    # Something else took the CPU meanwhile: measure this step again.
                    print(
                        f"  [{kind}] ramp {rate}/s failed while other processes used "
                        f"{r['other_cpu_pct']:.0f}% CPU: again",
                        flush=True,
                    )
                    if wait_quiet(max_wait=wait) < QUIET_PCT:
                        r = await phase(srv, RAMP_SUBS, rate, step_duration)
                        r["verdict"] = verdict(r)
                out["ramp"].append(r)
                print(
                    f"  [{kind}] ramp {rate}/s: p99 {fmt_ms(r['p99_ms'])} ms, "
                    f"gen CPU {r['gen_cpu_pct']:.0f}%, {r['verdict']}",
                    flush=True,
                )
                if r["verdict"] != "ok":
                    out["stop_reason"] = f"{rate}/s: {r['verdict']}"
                    break
                out["max_rate"] = rate
            else:
                out["stop_reason"] = "ramp exhausted"
        log = srv.errors_in_log()
        out["server_log"] = log[-1500:]
    return out


def row(kind: str, r: dict) -> list:
    return [
        r["subs"],
        r["rate"],
        kind,
        fmt_ms(r["p50_ms"]),
        fmt_ms(r["p99_ms"]),
        fmt_ms(r["max_ms"]),
        f"{r['delivered']}/{r['expected']}",
        f"{r['msgs_per_s']:.0f}",
        f"{r['achieved_rate']:.0f}",
        f"{r['server_cpu_pct']:.0f}",
        f"{r['gen_cpu_pct']:.0f}",
        f"{r['other_cpu_pct']:.0f}",
        r["verdict"],
    ]


HEADERS = [
    "subs",
    "edits/s",
    "server",
    "p50 ms",
    "p99 ms",
    "max ms",
    "delivered/expected",
    "msgs/s",
    "sent/s",
    "srv CPU%",
    "gen CPU%",
    "other CPU%",
    "verdict",
]


def report(results: dict[str, dict]) -> str:
    kinds = list(results)
    rows = []
    for i in range(len(MATRIX_SUBS) * len(MATRIX_RATES)):
        for k in kinds:
            rows.append(row(k, results[k]["matrix"][i]))
    parts = [table(HEADERS, rows, "(a) fan-out, one writer -> N subscribers in one room")]
    ramp_rows = []
    steps = max((len(results[k]["ramp"]) for k in kinds), default=0)
    for i in range(steps):
        for k in kinds:
            if i < len(results[k]["ramp"]):
                ramp_rows.append(row(k, results[k]["ramp"][i]))
    if ramp_rows:
        parts.append(
            table(HEADERS, ramp_rows, f"(a) ramp, {RAMP_SUBS} subscribers, until p99 >= 100 ms")
        )
        parts.append(
            "highest rate with p99 < 100 ms to 50 subscribers: "
            + ", ".join(
                f"{k} {results[k]['max_rate']} edits/s (stopped at {results[k]['stop_reason']})"
                for k in kinds
            )
        )
    for k in kinds:
        if results[k].get("server_log"):
            parts.append(f"{k} server printed:\n{results[k]['server_log']}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- multi-node mode

NODE_RATES = (20, 100, 500)
NODE_SUBS = 60
CROSS_TARGET_MS = 5.0  # crossing a node adds under 5 ms p99 at 100 edits/s
TARGET_RATE = 100
OTHER_CPU_RETRY_NODES = 70.0


async def node_phase(
    ports: list[tuple[int, str | None]],
    spread: bool,
    subs: int,
    rate: int,
    duration: float,
    meter_of,
) -> dict:
    """One writer on ``ports[0]``; subscribers on it alone, or spread over all ``ports``."""
    global _phase_no
    _phase_no += 1
    path = f"/rooms/fanout-nodes-{_phase_no}-{subs}-{rate}"
    n = len(ports) if spread else 1
    sinks: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
    counter = [0]
    peers: list = []
    errors: list[str] = []
    per_node = [subs // n + (1 if i < subs % n else 0) for i in range(n)]
    for i in range(n):
        port, token = ports[i]
        factories = [
            (lambda i=i: Peer(sinks[i], counter, awareness=awareness_state(new_client_id(), "sub")))
            for _ in range(per_node[i])
        ]
        got, errs = await connect_many(
            factories, port, [path] * per_node[i], concurrency=30, token=token
        )
        peers += got
        errors += errs
    synced, sync_errors = await wait_synced(peers, 20)  # type: ignore[arg-type]
    errors += sync_errors
    writer = await open_ws(
        lambda: Peer(awareness=awareness_state(new_client_id(), "writer")),
        ports[0][0],
        path,
        token=ports[0][1],
    )
    await asyncio.wait_for(writer.synced, 10)  # type: ignore[attr-defined]
    tw = TextWriter()
    writer.send(sync_update(tw.first()))  # the item later edits hang off (no stamp)
    # every subscriber, on every node, has the first update before the clock starts
    if not await poll_until(lambda: counter[0] >= len(peers), 10):
        errors.append(f"first update reached {counter[0]}/{len(peers)} subscribers in 10 s")
    await asyncio.sleep(0.3)
    base = counter[0]
    since = time.monotonic_ns()
    meter = meter_of()
    t0 = time.monotonic()
    sent, send_seconds = await write_at(writer, tw, rate, duration)  # type: ignore[arg-type]
    expected = sent * len(peers)
    await poll_until(lambda: counter[0] - base >= expected, DRAIN_SECONDS)
    t_done = time.monotonic()
    meter.stop()
    closed_early = sum(1 for p in peers if p.closed.done())
    await close_all([*peers, writer])
    same = latencies(sinks[0], since)
    other = latencies([x for sink in sinks[1:] for x in sink], since)
    s_same, s_other = LatencyStats.of(same), LatencyStats.of(other)
    return {
        "layout": "3 nodes" if spread else "one node",
        "subs": subs,
        "per_node": per_node,
        "rate": rate,
        "synced": synced,
        "errors": errors[:3]
        + ([f"{closed_early} subscribers closed early"] if closed_early else []),
        "sent": sent,
        "achieved_rate": sent / send_seconds,
        "expected": expected,
        "delivered": len(same) + len(other),
        "same": {"n": len(same), "expected": sent * per_node[0], **s_same.__dict__},
        "other": {"n": len(other), "expected": sent * sum(per_node[1:]), **s_other.__dict__},
        "p99_ms": max(s_same.p99, s_other.p99) if other else s_same.p99,
        "msgs_per_s": (len(same) + len(other)) / (t_done - t0),
        "server_cpu_pct": meter.server_pct,
        "gen_cpu_pct": meter.gen_pct,
        "other_cpu_pct": meter.other_pct,
    }


async def retried(ports, spread: bool, args, rate: int, meter_of) -> dict:
    """A phase, measured once more if something else took the CPU meanwhile.

    ``other CPU%`` includes Postgres and Redis here (about half a core at 500
    edits/s), hence a higher bar than the one-process matrix's.
    """
    r = await node_phase(ports, spread, args.node_subs, rate, args.node_duration, meter_of)
    if r["other_cpu_pct"] > OTHER_CPU_RETRY_NODES:
        if wait_quiet(max_wait=args.wait_quiet) < QUIET_PCT:
            r = await node_phase(ports, spread, args.node_subs, rate, args.node_duration, meter_of)
    r["verdict"] = verdict(r)
    return r


async def bench_nodes(args) -> dict:
    rates = [int(x) for x in args.node_rates.split(",") if x.strip()]
    dsn = args.dsn or os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit("multi-node mode needs Postgres: set DATABASE_URL or pass --dsn")
    out: dict = {"phases": [], "nodes": args.nodes, "subs": args.node_subs}
    wait_quiet(max_wait=args.wait_quiet)
    with Cluster(args.nodes, args.redis_url, dsn) as cluster:
        ports = [(n.port, n.token) for n in cluster.nodes]
        print(
            f"  {args.nodes} nodes on ports {', '.join(str(p) for p, _ in ports)}, "
            f"Redis prefix {cluster.prefix}",
            flush=True,
        )
        for rate in rates:
            for spread in (False, True):
                r = await retried(ports, spread, args, rate, lambda: Meter(cluster))
                out["phases"].append(r)
                print(
                    f"  [{r['layout']}] {args.node_subs} subs x {rate}/s: writer's node p99 "
                    f"{fmt_ms(r['same']['p99'])} ms, other nodes p99 {fmt_ms(r['other']['p99'])} "
                    f"ms, {r['delivered']}/{r['expected']} delivered, {r['verdict']}",
                    flush=True,
                )
        out["server_log"] = cluster.errors_in_log()[-1500:]
    # for reference: one process, no Redis, its own scratch database
    os.environ["DATABASE_URL"] = dsn
    with Server("ours", env={"REDIS_URL": None}) as srv:
        for rate in rates:
            r = await retried([(srv.port, srv.token)], False, args, rate, lambda: Meter(srv))
            r["layout"] = "1 proc, no Redis"
            out["phases"].append(r)
            print(
                f"  [1 proc, no Redis] {args.node_subs} subs x {rate}/s: p99 "
                f"{fmt_ms(r['same']['p99'])} ms, {r['verdict']}",
                flush=True,
            )
    return out


def node_report(out: dict) -> str:
    headers = [
        "edits/s",
        "layout",
        "subs (per node)",
        "writer's node p50",
        "p99",
        "other nodes p50",
        "p99",
        "crossing +p50",
        "+p99",
        "max ms",
        "delivered/expected",
        "sent/s",
        "srv CPU%",
        "gen CPU%",
        "other CPU%",
        "verdict",
    ]
    rows = []
    order = {"1 proc, no Redis": 0, "one node": 1, "3 nodes": 2}
    phases = sorted(out["phases"], key=lambda r: (r["rate"], order[r["layout"]]))
    for r in phases:
        same, other = r["same"], r["other"]
        cross = other["n"] > 0
        rows.append(
            [
                r["rate"],
                r["layout"],
                f"{r['subs']} ({'/'.join(str(x) for x in r['per_node'])})",
                fmt_ms(same["p50"]),
                fmt_ms(same["p99"]),
                fmt_ms(other["p50"]) if cross else "-",
                fmt_ms(other["p99"]) if cross else "-",
                fmt_ms(other["p50"] - same["p50"]) if cross else "-",
                fmt_ms(other["p99"] - same["p99"]) if cross else "-",
                fmt_ms(max(same["max"], other["max"]) if cross else same["max"]),
                f"{r['delivered']}/{r['expected']}",
                f"{r['achieved_rate']:.0f}",
                f"{r['server_cpu_pct']:.0f}",
                f"{r['gen_cpu_pct']:.0f}",
                f"{r['other_cpu_pct']:.0f}",
                r["verdict"],
            ]
        )
    title = (
        f"(a) fan-out over {out['nodes']} nodes (Redis bus, one Postgres): one writer on node 0, "
        "latency in ms (writer's send -> subscriber's receive); crossing = other nodes - "
        "writer's node, same phase; srv CPU% = all nodes; other CPU% = Postgres, Redis "
        "and the rest of the machine (2 cores)"
    )
    parts = [table(headers, rows, title)]
    target = [r for r in phases if r["layout"] == "3 nodes" and r["rate"] == TARGET_RATE]
    for r in target:
        extra = r["other"]["p99"] - r["same"]["p99"]
        met = extra < CROSS_TARGET_MS and r["verdict"] == "ok"
        one = [x for x in phases if x["layout"] == "one node" and x["rate"] == TARGET_RATE]
        versus = (
            f"; other nodes' p99 against all {one[0]['subs']} on one node: "
            f"{fmt_ms(r['other']['p99'])} vs {fmt_ms(one[0]['same']['p99'])} ms"
            if one
            else ""
        )
        parts.append(
            f"target: crossing a node adds < {CROSS_TARGET_MS:.0f} ms p99 at {TARGET_RATE} "
            f"edits/s: +{fmt_ms(extra)} ms ({'met' if met else 'NOT met'}){versus}"
        )
    bound = [r for r in phases if r["gen_cpu_pct"] > GEN_CPU_LIMIT]
    if bound:
        parts.append(
            "the generator saturated (gen CPU% > 90) in: "
            + ", ".join(f"{r['layout']} {r['rate']}/s" for r in bound)
            + ": those latencies are partly the generator's own"
        )
    if out.get("server_log"):
        parts.append(f"nodes printed:\n{out['server_log']}")
    return "\n\n".join(parts)


async def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=4.0, help="seconds per matrix phase")
    p.add_argument("--step-duration", type=float, default=3.0, help="seconds per ramp step")
    p.add_argument("--no-ramp", action="store_true")
    p.add_argument(
        "--nodes",
        type=int,
        default=0,
        metavar="N",
        help="multi-node mode: N server nodes sharing rooms through Redis (e.g. 3)",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis for --nodes")
    p.add_argument(
        "--dsn",
        default=None,
        help="Postgres server for --nodes (a scratch database is made there); default DATABASE_URL",
    )
    p.add_argument(
        "--node-subs", type=int, default=NODE_SUBS, help="subscribers per phase with --nodes"
    )
    p.add_argument(
        "--node-duration", type=float, default=8.0, help="seconds per phase with --nodes"
    )
    p.add_argument(
        "--node-rates",
        default=",".join(str(r) for r in NODE_RATES),
        help="edits/s with --nodes, comma-separated",
    )
    args = parse_args(p)
    if args.nodes:
        if args.nodes < 2:
            raise SystemExit("--nodes wants 2 or more")
        print(f"fan-out over {args.nodes} nodes ...", flush=True)
        out = await bench_nodes(args)
        print()
        print(node_report(out))
        from common import Results

        Results("fanout-nodes", {"nodes": out}).save(args.json)
        return
    results = {}
    for kind in servers_of(args.server):
        print(f"fan-out on {kind} ...", flush=True)
        results[kind] = await bench_server(
            kind, args.duration, args.step_duration, not args.no_ramp, args.wait_quiet
        )
    print()
    print(report(results))
    from common import Results

    Results("fanout", {"results": results}).save(args.json)


if __name__ == "__main__":
    run(main())
