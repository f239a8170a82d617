"""Run every benchmark against both servers and print a summary against the targets.

    python bench/run_all.py [--server ours|reference|both]
        [--only fanout,nodes,rooms,join,idle,herd,runs,workers,sync,progress]

Each benchmark runs as its own process (its full tables are printed as it
goes); the summary at the end puts the headline figures side by side. ``runs`` (code runs
in rooms, a Docker Engine and the run image needed) and ``sync`` (demo playback) measure
our server only; ``progress`` (events and leaderboards) measures the database layer, no server.
Issue 9's two, ours only: ``nodes`` is ``fanout.py --nodes 3`` (three nodes sharing rooms
through Redis; needs Redis and ``DATABASE_URL``, skipped without it) and ``workers`` is
``runs.py --workers 1,2`` (runs/s with one and two worker processes, a CPU-bound and a
waiting program; Docker and Redis), both shortened here to keep the whole run in minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ORDER = (
    "fanout",
    "nodes",
    "rooms",
    "join",
    "idle",
    "herd",
    "runs",
    "workers",
    "sync",
    "progress",
)
#: Entries that are not ``<name>.py`` with the common flags: (script, its flags). Both
#: measure our server only, shorter than their defaults to keep the whole run in minutes:
#: ``nodes`` at the target's rate only (100 edits/s), 5 s per layout (~1 min); ``workers``
#: one round, 3 s warm-up + 8 s per row, no own-engine row (~2 min).
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "nodes": ("fanout.py", ["--nodes", "3", "--node-rates", "100", "--node-duration", "5"]),
    "workers": (
        "runs.py",
        ["--workers", "1,2", "--workload", "cpu,wait", "--sustain-seconds", "8"],
    ),
}
#: Two workers against one, the waiting program: the ceiling is twice one worker's slots.
WORKERS_WAIT_RATIO = 1.8
#: fanout.py --nodes: crossing a node adds under this (ms, p99) at 100 edits/s.
CROSSING_TARGET_MS = 5.0


def fig(v: float | None, unit: str = "", digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}{unit}"


def summary(data: dict[str, dict], kinds: list[str]) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(name: str, target: str, values: dict[str, str], ok: bool | None) -> None:
        rows.append(
            [
                name,
                *(values.get(k, "-") for k in kinds),
                target,
                "-" if ok is None else ("yes" if ok else "NO"),
            ]
        )

    def cmp(values: dict[str, float | None], better: str, slack: float = 0.0) -> bool | None:
        o, r = values.get("ours"), values.get("reference")
        if o is None or r is None or "reference" not in kinds or "ours" not in kinds:
            return None
        return o <= r * (1 + slack) if better == "lower" else o >= r * (1 - slack)

    fan = data.get("fanout")
    if fan:
        res = fan["results"]
        for subs, rate in ((200, 100), (50, 500), (200, 500)):
            p99 = {}
            for k, r in res.items():
                m = next((x for x in r["matrix"] if x["subs"] == subs and x["rate"] == rate), None)
                p99[k] = m["p99_ms"] if m and m["delivered"] == m["expected"] else None
            add(
                f"(a) p99, {subs} subs x {rate} edits/s",
                "<= reference",
                {k: fig(v, " ms") for k, v in p99.items()},
                cmp(p99, "lower", 0.10),
            )
        mx = {k: r["max_rate"] for k, r in res.items()}
        add(
            "(a) max edits/s to 50 subs, p99 < 100 ms",
            ">= reference",
            {k: f"{v or 0}/s" for k, v in mx.items()},
            cmp({k: v or 0 for k, v in mx.items()}, "higher"),
        )
    rooms = data.get("rooms")
    if rooms:
        res = rooms["results"]
        p99 = {k: r["p99_ms"] for k, r in res.items()}
        add(
            "(b) 500 rooms x 4: p99",
            "<= reference",
            {k: fig(v, " ms") for k, v in p99.items()},
            cmp(p99, "lower", 0.10),
        )
        rss = {k: r["rss_mib"] for k, r in res.items()}
        add(
            "(b) 500 rooms x 4: server RSS",
            "<= reference",
            {k: fig(v, " MiB", 0) for k, v in rss.items()},
            cmp(rss, "lower", 0.05),
        )
        cpu = {k: r["server_cpu_pct"] for k, r in res.items()}
        add(
            "(b) 500 rooms x 4: server CPU",
            "<= reference",
            {k: fig(v, "%", 0) for k, v in cpu.items()},
            cmp(cpu, "lower", 0.10),
        )
    join = data.get("join")
    if join:
        res = join["results"]
        p50 = {k: r["p50_ms"] for k, r in res.items()}
        add(
            "(c) join 20k-edit doc: p50",
            "<= reference",
            {k: fig(v, " ms") for k, v in p50.items()},
            cmp(p50, "lower", 0.10),
        )
    idle = data.get("idle")
    if idle:
        res = idle["results"]
        per = {k: r["kib_per_conn"] for k, r in res.items()}
        add(
            "(d) RSS per idle connection",
            "ours < 12 KB",
            {k: fig(v, " KiB") for k, v in per.items()},
            per["ours"] * 1.024 < 12 if "ours" in per else None,
        )
    herd = data.get("herd")
    if herd:
        res = herd["results"]
        worst = {k: min(x["synced"] for x in v) for k, v in res.items()}
        n = {k: v[0]["clients"] for k, v in res.items()}
        add(
            "(e) burst of 100 joins: synced in 10 s (worst round)",
            "100/100",
            {k: f"{worst[k]}/{n[k]}" for k in worst},
            worst["ours"] == n["ours"] if "ours" in worst else None,
        )
    nodes = (data.get("nodes") or {}).get("nodes")
    if nodes:
        for r in nodes["phases"]:
            if r["layout"] == "3 nodes" and r["rate"] == 100:
                extra = r["other"]["p99"] - r["same"]["p99"]
                add(
                    f"(a) {nodes['nodes']} nodes, 100 edits/s: crossing a node, +p99",
                    f"< {CROSSING_TARGET_MS:.0f} ms",
                    {"ours": fig(extra, " ms")},
                    extra < CROSSING_TARGET_MS and r["verdict"] == "ok",
                )
    runs = (data.get("runs") or {}).get("results", {}).get("ours")
    if runs:
        h, d = runs["hello"], runs["docker_run"]
        add(
            "(f) hello-world run -> run.exit: p50",
            "< 60 ms",
            {"ours": fig(h["p50_ms"], " ms")},
            h["p50_ms"] < 60,
        )
        add(
            "(f) hello-world run -> run.exit: p99",
            "< 150 ms",
            {"ours": fig(h["p99_ms"], " ms")},
            h["p99_ms"] < 150,
        )
        add(
            "(f) docker run --rm hello world: p50 (for comparison)",
            "-",
            {"ours": fig(d["p50_ms"], " ms", 0)},
            None,
        )
        fo = runs["first_output"]
        add(
            "(f) first output byte: p50",
            "< 50 ms",
            {"ours": fig(fo["p50_ms"], " ms")},
            fo["p50_ms"] < 50,
        )
        for b in runs["bursts"]:
            add(
                f"(f) burst of {b['users']} runs, pool {b['pool']}: last exit",
                "all ok, none refused, < 5 s",
                {
                    "ours": f"{fig(b['last_exit_s'], ' s', 2)} "
                    f"{b['ok']}/{b['users']} ok {b['refused']} refused"
                },
                b["ok"] == b["users"] and b["refused"] == 0 and b["last_exit_s"] < 5,
            )
        s = runs["sustained"]
        add(
            f"(f) sustained, {s['users']} users: runs/s",
            ">= 20/s",
            {"ours": fig(s["runs_per_second"], "/s")},
            s["runs_per_second"] >= 20,
        )
    workers = (data.get("workers") or {}).get("results", {}).get("ours")
    if workers:
        by = {(w["workload"], w["workers"]): w for w in workers["workers_summary"]}
        for workload in dict.fromkeys(w["workload"] for w in workers["workers_summary"]):
            one, two = by.get((workload, 1)), by.get((workload, 2))
            if not one or not two:
                continue
            ratio = statistics.median(two["vs_one_worker"]) if two["vs_one_worker"] else None
            wait = workload == "wait"
            add(
                f"(f) runs/s, 1 -> 2 workers ({workload}; containers on CPU "
                f"{one['cpus']} -> {two['cpus']})",
                f">= {WORKERS_WAIT_RATIO}x" if wait else "- (CPUs shared)",
                {
                    "ours": f"{fig(statistics.median(one['runs_per_second']), '/s')} -> "
                    f"{fig(statistics.median(two['runs_per_second']), '/s')} "
                    f"({fig(ratio, 'x', 2)})"
                },
                (ratio is not None and ratio >= WORKERS_WAIT_RATIO) if wait else None,
            )
    sync = (data.get("sync") or {}).get("results", {}).get("ours")
    if sync and sync.get("part1"):
        g1 = sync["part1"]
        add(
            f"(g) |viewer - presenter| p99, {g1['viewers']} viewers, +-2 s clocks",
            "< 50 ms",
            {"ours": fig(g1["p99_ms"], " ms")},
            g1["p99_ms"] < 50,
        )
        add(
            "(g) commands that reached a viewer after their `at`",
            "0",
            {"ours": f"{g1['late']}/{g1['commands'] * g1['viewers']}"},
            g1["late"] == 0,
        )
    if sync and sync.get("part2"):
        g2 = sync["part2"]
        for name in ("small", "big"):
            d = g2.get(name)
            if d:
                add(
                    f"(g) seek -> all {g2['viewers']} viewers, {name} demo: p99",
                    "< 150 ms (the lead)",
                    {"ours": fig(d["reach_p99_ms"], " ms")},
                    d["reach_p99_ms"] < 150,
                )
        sizes = [g2[n]["bytes_per_viewer_per_change"] for n in ("small", "big") if n in g2]
        if sizes:
            add(
                "(g) bytes per viewer per change (small / big demo)",
                "one small message",
                {"ours": " / ".join(f"{v:.0f} B" for v in sizes)},
                max(sizes) < 256,
            )
    progress = (data.get("progress") or {}).get("results", {}).get("ours")
    if progress:
        best = max(progress["a"], key=lambda a: a["events_per_second"])
        add(
            f"(h) apply_event, {best['workers']} workers: events/s",
            "> 2000/s",
            {"ours": fig(best["events_per_second"], "/s", 0)},
            best["events_per_second"] > 2000,
        )
        for q in progress["b"]["queries"]:
            add(
                f"(h) leaderboard {q['scope']} {q['window']}, 100k users: p99",
                "< 50 ms",
                {"ours": fig(q["p99_ms"], " ms")},
                q["p99_ms"] < 50,
            )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", choices=("ours", "reference", "both"), default="both")
    p.add_argument(
        "--only", default=",".join(ORDER), help="comma-separated subset of " + ", ".join(ORDER)
    )
    p.add_argument("--wait-quiet", type=float, default=30.0)
    p.add_argument("--ours-args", default="", help="extra flags for our server")
    args = p.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(ORDER)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    kinds = ["ours", "reference"] if args.server == "both" else [args.server]
    data: dict[str, dict] = {}
    failed: list[str] = []
    started = time.monotonic()
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            script, flags = VARIANTS.get(name, (f"{name}.py", []))
            server = args.server
            if name in VARIANTS:
                if "ours" not in kinds:
                    continue  # ours only
                if name == "nodes" and not os.environ.get("DATABASE_URL"):
                    print("\n=== nodes: skipped (fanout.py --nodes needs DATABASE_URL)")
                    skipped.append(name)
                    continue
                server = "ours"
            shown = ["python", f"bench/{script}", *flags, "--server", server]
            cmd = [
                sys.executable,
                str(BENCH / script),
                *flags,
                "--server",
                server,
                "--json",
                str(out),
                "--wait-quiet",
                str(args.wait_quiet),
                f"--ours-args={args.ours_args}",
            ]
            print(f"\n=== {' '.join(shown)}", flush=True)
            t0 = time.monotonic()
            try:
                rc = subprocess.run(cmd, timeout=300).returncode
            except subprocess.TimeoutExpired:
                rc = -1
            print(f"=== {name}: {time.monotonic() - t0:.0f} s, exit {rc}", flush=True)
            if rc == 0 and out.exists():
                data[name] = json.loads(out.read_text())
            else:
                failed.append(name)
    from common import table

    rows = summary(data, kinds)
    print()
    print(
        table(
            ["figure", *kinds, "target", "met"],
            rows,
            f"summary ({time.monotonic() - started:.0f} s in all)",
        )
    )
    if skipped:
        print(f"\nskipped: {', '.join(skipped)}")
    if failed:
        print(f"\nfailed or timed out: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
