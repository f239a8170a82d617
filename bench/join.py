"""(c) Join a big room: time for a new client to fully sync a document of 20,000 edits.

    python bench/join.py --server ours|reference|both

A builder client first sends 20,000 edits (a seeded mix of typing at a
cursor, cursor jumps and small deletions: ~200 KB of text) as 20,000
y-websocket updates, waiting for their echoes so the server has applied them
all. Then ``--joins`` clients join one after another; each is timed from its
TCP connect until it has the server's sync step 2 applied to a pycrdt Doc and
its text equal to the builder's. Prints p50/min/max of the joins (the first
is shown apart) and the server CPU per join. For our server, ``--joins`` more
joins follow with the room unloaded before each, so each loads the room from
Postgres (snapshot + log): the "cold" columns.
"""

from __future__ import annotations

import asyncio
import random
import time

from common import (
    TEXT_NAME,
    DocPeer,
    Meter,
    Peer,
    Results,
    Server,
    auth_headers,
    base_parser,
    close_all,
    open_ws,
    parse_args,
    poll_until,
    run,
    server_logs,
    servers_of,
    table,
    wait_quiet,
)
from pycrdt import Doc, Text

from crdt.protocol import sync_update

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def build_edits(n: int, seed: int = 20000) -> tuple[list[bytes], str]:
    """``n`` updates of one client editing a text, and the text they make."""
    rng = random.Random(seed)
    doc = Doc(client_id=rng.getrandbits(32))
    text = doc.get(TEXT_NAME, type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    length = cursor = 0
    for _ in range(n):
        r = rng.random()
        if r < 0.10:
            cursor = rng.randint(0, length)
        if 0.10 <= r < 0.15 and cursor > 0:
            k = min(cursor, rng.randint(1, 8))
            del text[cursor - k : cursor]
            cursor -= k
            length -= k
        else:
            word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(6, 14)))
            word += " " if rng.random() < 0.8 else "\n"
            text.insert(cursor, word)
            cursor += len(word)
            length += len(word)
    return updates, str(text)


class Joiner(DocPeer):
    def __init__(self) -> None:
        super().__init__()
        self.step2_bytes = 0

    def on_step2(self, payload: bytes, now: int) -> None:
        self.step2_bytes = len(payload)
        super().on_step2(payload, now)


async def join_once(
    port: int, path: str, expected: str, token: str | None
) -> tuple[float, int, bool]:
    t0 = time.perf_counter()
    peer: Joiner = await open_ws(Joiner, port, path, token=token)  # type: ignore[assignment]
    await asyncio.wait_for(peer.synced, 30)
    ok = str(peer.text) == expected
    elapsed = time.perf_counter() - t0
    await close_all([peer])
    return elapsed, peer.step2_bytes, ok


async def wait_unloaded(port: int, room: str, token: str | None, bound: float = 10.0) -> None:
    """Until our server no longer holds ``room`` in memory (its HTTP API says so)."""
    import aiohttp

    deadline = time.monotonic() + bound
    async with aiohttp.ClientSession(headers=auth_headers(token)) as session:
        while time.monotonic() < deadline:
            async with session.get(f"http://127.0.0.1:{port}/api/rooms") as resp:
                if resp.status != 200:
                    raise RuntimeError(f"GET /api/rooms: {resp.status} {await resp.text()}")
                rooms = (await resp.json())["rooms"]
            if not any(r["id"] == room and r["loaded"] for r in rooms):
                return
            await asyncio.sleep(0.005)
    raise RuntimeError(f"room {room} still loaded after {bound}s")


async def bench_server(kind: str, edits: int, joins: int, wait: float) -> dict:
    t_build = time.perf_counter()
    updates, expected = build_edits(edits)
    build_seconds = time.perf_counter() - t_build
    wait_quiet(max_wait=wait)
    # Ours unloads a room as soon as nobody is in it, so that the cold joins
    # below load it from Postgres; the builder stays in the room for the warm ones.
    extra = ["--unload-grace-seconds", "0"] if kind == "ours" else []
    with Server(kind, extra) as srv:
        path = "/rooms/big-join"
        builder: Peer = await open_ws(Peer, srv.port, path, token=srv.token)  # type: ignore[assignment]
        await asyncio.wait_for(builder.synced, 10)
        t_load = time.perf_counter()
        sent = 0
        for i in range(0, len(updates), 200):
            for u in updates[i : i + 200]:
                builder.send(sync_update(u))
                sent += 1
            # Both servers echo an update to its sender: wait for this batch's echoes.
            if not await poll_until(lambda n=sent: builder.updates >= n, 30.0, 0.001):
                raise RuntimeError(
                    f"builder: {builder.updates}/{sent} echoes (close code {builder.close_code})"
                    f"\n{srv.log_tail()}"
                )
        load_seconds = time.perf_counter() - t_load
        await asyncio.sleep(0.5)
        rss = srv.rss_kib()
        first, step2_bytes, first_ok = await join_once(srv.port, path, expected, srv.token)
        times: list[float] = []
        oks = [first_ok]
        meter = Meter(srv)
        for _ in range(joins):
            elapsed, _, ok = await join_once(srv.port, path, expected, srv.token)
            times.append(elapsed)
            oks.append(ok)
        meter.stop()
        times.sort()
        await close_all([builder])
        cold: list[float] = []
        if kind == "ours":
            # Cold joins: the room is not in memory and loads from Postgres.
            for _ in range(joins):
                await wait_unloaded(srv.port, "big-join", srv.token)
                elapsed, _, ok = await join_once(srv.port, path, expected, srv.token)
                cold.append(elapsed)
                oks.append(ok)
            cold.sort()
        log = srv.errors_in_log()
        return {
            "edits": edits,
            "text_bytes": len(expected.encode()),
            "update_bytes": step2_bytes,
            "build_seconds": build_seconds,
            "load_seconds": load_seconds,
            "rss_mib": rss / 1024,
            "first_ms": first * 1000,
            "p50_ms": times[len(times) // 2] * 1000,
            "min_ms": times[0] * 1000,
            "max_ms": times[-1] * 1000,
            "joins": joins,
            "cold_p50_ms": cold[len(cold) // 2] * 1000 if cold else None,
            "cold_max_ms": cold[-1] * 1000 if cold else None,
            "content_ok": sum(oks),
            "checked": len(oks),
            "server_cpu_ms_per_join": meter.server_cpu * 1000 / joins,
            "gen_cpu_ms_per_join": meter.gen_cpu * 1000 / joins,
            "other_cpu_pct": meter.other_pct,
            "server_log": log,
        }


def report(results: dict[str, dict]) -> str:
    headers = [
        "server",
        "p50 ms",
        "min ms",
        "max ms",
        "first ms",
        "content ok",
        "srv CPU ms/join",
        "gen CPU ms/join",
        "other CPU%",
        "doc RSS MiB",
        "load 20k edits s",
        "cold p50 ms",
        "cold max ms",
    ]
    rows = [
        [
            k,
            f"{r['p50_ms']:.1f}",
            f"{r['min_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['first_ms']:.1f}",
            f"{r['content_ok']}/{r['checked']}",
            f"{r['server_cpu_ms_per_join']:.1f}",
            f"{r['gen_cpu_ms_per_join']:.1f}",
            f"{r['other_cpu_pct']:.0f}",
            f"{r['rss_mib']:.0f}",
            f"{r['load_seconds']:.1f}",
            "-" if r["cold_p50_ms"] is None else f"{r['cold_p50_ms']:.1f}",
            "-" if r["cold_max_ms"] is None else f"{r['cold_max_ms']:.1f}",
        ]
        for k, r in results.items()
    ]
    first = next(iter(results.values()))
    title = (
        f"(c) join: {first['joins']} sequential joins of a room of {first['edits']} edits "
        f"({first['text_bytes'] / 1000:.0f} KB of text, "
        f"{first['update_bytes'] / 1000:.0f} KB as one update)"
    )
    parts = [table(headers, rows, title)]
    parts += server_logs(results)
    return "\n\n".join(parts)


async def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--edits", type=int, default=20000)
    p.add_argument("--joins", type=int, default=20)
    args = parse_args(p)
    results = {}
    for kind in servers_of(args.server):
        print(f"join on {kind} ...", flush=True)
        results[kind] = await bench_server(kind, args.edits, args.joins, args.wait_quiet)
    print()
    print(report(results))
    Results("join", {"results": results}).save(args.json)


if __name__ == "__main__":
    run(main())
