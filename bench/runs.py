"""(f) Runs: code run in a room, from the "run" request to ``run.exit``, over the room socket.

    python bench/runs.py [--seq-runs 100] [--bursts 30,60] [--sustain-seconds 10]
    python bench/runs.py --workers 0,1,2 [--workload cpu,wait] [--repeat 3]

Our server only (the reference server has no runs); it needs a Docker Engine
and the run image (``executor/images/build.sh`` builds it; this script installs
and builds nothing, it says what is missing and exits non-zero).

Every client is a Python y-websocket peer on the room socket with ``?ext=1``
(so it gets the extension channel, message type 100). It signs in with a
student token of its own (a distinct user per client: a run container is never
shared between two people), opens a fresh room (so it owns it and may run in
it), puts ``main.py`` in the room's document (a ``Y.Map`` "files" of
``Y.Text``, built with pycrdt and sent as a sync update), then sends the
extension message ``{"type": "run"}`` and waits for that run's ``run.exit``
(``run.started`` carries the run id; a ``notice`` of level error is a refusal).

1. **hello world**: ``print("hello")``, 100 sequential runs by one user in one
   room (the first run, which takes a container from the warm pool, is shown
   apart): request -> ``run.exit`` received, p50/p99; side by side, in the same
   invocation, ``docker run --rm --network none <image> python3 -c ...`` timed
   20 times with ``subprocess``.
2. **first output byte**: the program prints ``repr(time.time())``; the client
   takes its own ``time.time()`` when the ``run.output`` chunk arrives; the
   latency is arrival minus printed (one host clock). 50 runs.
3. **burst**: N users (30, then 60), each in their own room, connected and
   with main.py in place beforehand, all send ``run`` in the same event-loop
   iteration; time until the last ``run.exit``, and refusals counted. Each
   (pool, N) gets a fresh server: the default pool (``--run-pool-warm 4``) and
   ``--run-pool-warm 60 --run-pool-max 64``. Before the burst the script waits
   until the pool is warm: it polls ``docker ps`` for the containers labelled
   with that server process (``org.opencode-live.executor.process=<pid>:<start>``)
   until ``warm`` of them run (bounded by ``--warm-timeout``), then 2 s more for
   their agents to say hello.
4. **sustained**: 4 users in 4 rooms each run hello world back to back for
   10 s (after one untimed run each); runs/s counts the ``run.exit`` (status
   ok) received inside the window.

5. **workers** (``--workers 1,2``, this part only; issue 9's "runs per second with
   two workers against one"): a ``--run-queue redis`` server (``REDIS_URL``, else
   redis://127.0.0.1:6379/0; its queue, bus and shared-state keys all under a random
   prefix, deleted at the end) and ``opencode-live worker`` processes on this
   machine's engine. 16 users (``--sustain-users``) run a program back to back; runs/s
   counts the ``run.exit`` (ok, right output) received in ``--sustain-seconds`` after
   ``--warmup-seconds`` (3). ``--workload cpu,wait`` says which program:

   - ``cpu``: a loop of ~0.1 s of CPU. With ``--pin auto`` worker i's containers are
     pinned to CPU i (``--worker-cpuset``): one worker on CPU 0 against two on CPU 0 and
     CPU 1, as separate hosts would be. The server, Redis, the Docker Engine, the
     workers themselves and this client are not pinned: they share both CPUs with the
     programs, so two workers cannot reach twice one worker here.
   - ``wait``: ``time.sleep(0.5)``, a program waiting as a student's program waits on
     input: little CPU, so runs/s is bounded by the workers' slots (``--worker-slots``,
     4 runs at once each): at most 8/s with one worker, 16/s with two.
   - ``hello``: ``print("hello")``, the path's own overhead (the earlier figure).

   Each round starts max(N) workers (each may keep ``users + slots`` containers, so
   every user keeps one on every worker) and primes them (users run hello world until
   every user has a container on every worker: none is made while measuring, column
   ``made``), measures the rows with the most workers, stops the extra workers, and
   measures the rows with fewer. N = 0 is the server's own engine (any CPU, no queue, no
   slot limit; no wait row, as it refuses a run when all its containers are busy
   rather than queueing it). ``--repeat`` rounds; the summary gives median (min-max).
   A row whose "rest CPU%" (neither the programs, nor server, workers and client) is
   over 40 % of a core was disturbed by other processes: it is measured again once if
   the machine goes quiet, and the summary shows the quiet rows apart.

Servers run with ``--runs-per-hour 1000000`` (and common.py's raised socket
limits). Each is stopped with SIGTERM (it removes its containers); should any
container labelled with its process remain, this script removes it.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from common import (
    CLK_TCK,
    QUIET_PCT,
    Meter,
    Peer,
    Results,
    Server,
    base_parser,
    close_all,
    open_ws,
    parse_args,
    proc_cpu_seconds,
    run,
    servers_of,
    table,
    wait_quiet,
)
from pycrdt import Doc, Map, Text

from crdt import MESSAGE_ROOM, MessageKind, parse_frame, room_message, sync_step1, sync_update

IMAGE = "opencode-live/runner:1"
LABEL = "org.opencode-live.executor"
LABEL_PROCESS = LABEL + ".process"
HELLO_PY = 'print("hello")\n'
STAMP_PY = "import time\nprint(repr(time.time()), flush=True)\n"
RUN_REQUEST = room_message(msgspec.msgpack.encode({"type": "run"}))
#: Flags for every server this benchmark starts (later --ours-args still win).
RUN_ARGS = ["--runs-per-hour", "1000000"]
#: Seconds a server may take to stop (it removes its containers on SIGTERM).
STOP_SECONDS = 90.0

TARGETS = {
    "hello_p50": 60.0,
    "hello_p99": 150.0,
    "first_output_p50": 50.0,
    "burst_seconds": 5.0,
    "sustained_rps": 20.0,
}


class Unavailable(Exception):
    """What this benchmark needs and does not have (engine, image, runs off)."""


# --------------------------------------------------------------------------- docker


def docker(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def check_docker(image: str) -> str:
    """The engine's version; Unavailable when the engine or the image is missing."""
    if shutil.which("docker") is None:
        raise Unavailable("the docker command is not installed")
    try:
        info = docker("version", "--format", "{{.Server.Version}}", timeout=20)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable("the Docker Engine did not answer in 20 s") from exc
    if info.returncode != 0:
        raise Unavailable(f"no Docker Engine: {info.stderr.strip() or info.stdout.strip()}")
    img = docker("image", "inspect", "--format", "{{.Id}}", image)
    if img.returncode != 0:
        raise Unavailable(
            f"the run image {image} is missing (executor/images/build.sh builds it): "
            f"{img.stderr.strip()}"
        )
    return info.stdout.strip()


def containers_of(tag: str, running_only: bool = False) -> list[str]:
    """IDs of the containers labelled with one server process (``<pid>:<start time>``)."""
    args = ["ps", "--no-trunc", "--filter", f"label={LABEL_PROCESS}={tag}", "--format", "{{.ID}}"]
    if not running_only:
        args.insert(1, "-a")
    out = docker(*args)
    return out.stdout.split() if out.returncode == 0 else []


def docker_run_times(image: str, n: int) -> tuple[list[float], list[str]]:
    """``docker run --rm --network none <image> python3 -c 'print("hello")'``, n times (ms)."""
    times: list[float] = []
    errors: list[str] = []
    cmd = ["docker", "run", "--rm", "--network", "none", image, "python3", "-c", 'print("hello")']
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        elapsed = (time.perf_counter() - t0) * 1000
        if p.returncode == 0 and p.stdout == "hello\n":
            times.append(elapsed)
        else:
            errors.append(f"exit {p.returncode}: {p.stderr.strip()[:200]}")
    return times, errors


# --------------------------------------------------------------------------- server


def user_token(srv: Server, i: int | str) -> str:
    """A student token of its own for user ``bench-<i>`` (common.py's is one shared user)."""
    from server.tokens import TokenVerifier, load_or_create_secret

    assert srv._data_dir is not None, "our server only"
    verifier = TokenVerifier(
        secret=load_or_create_secret(Path(srv._data_dir.name)),
        issuer="opencode-live",
        audience="opencode-live",
    )
    return verifier.mint(
        name=f"Bench {i}", role="student", user_id=f"bench-{i}", ttl_seconds=24 * 3600
    )


class RunServer(Server):
    """Our server with runs; stopped with a longer grace (it removes its containers)."""

    def __init__(self, extra_args: list[str]) -> None:
        super().__init__("ours", [*RUN_ARGS, *extra_args])
        self.tag = ""
        self.leftovers = 0

    def start(self, timeout: float = 30.0) -> RunServer:
        try:
            super().start(timeout)
        except BaseException:
            # a server that exits at start-up: its scratch database goes too (Server.start
            # leaves it then, and ``with`` never reaches __exit__)
            super().stop()
            raise
        from executor.cgroups import process_start_time

        self.tag = f"{self.pid}:{process_start_time(self.pid) or '?'}"
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"  (server {proc.pid} still running {STOP_SECONDS:.0f}s after SIGTERM)")
        super().stop()
        if self.tag:
            left = containers_of(self.tag)
            if left:
                self.leftovers = len(left)
                print(f"  (removing {len(left)} containers the stopped server left)", flush=True)
                docker("rm", "-f", *left, timeout=120)
            self.tag = ""


async def wait_runs_ready(srv: Server, bound: float = 30.0) -> None:
    """Until /readyz says runs are ok; Unavailable with its reason after ``bound``."""
    import aiohttp

    deadline = time.monotonic() + bound
    why = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{srv.port}/readyz") as resp:
                    why = (await resp.json()).get("checks", {}).get("runs", "not reported")
            except (aiohttp.ClientError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            if why == "ok":
                return
            await asyncio.sleep(0.2)
    raise Unavailable(f"the server's runs are not available after {bound:.0f}s: {why}")


async def wait_pool_warm(srv: RunServer | WorkerProc, warm: int, bound: float) -> tuple[float, int]:
    """Polls ``docker ps`` until ``warm`` of this server's containers run, then 2 s more.

    Returns (seconds waited, containers running).
    """
    t0 = time.monotonic()
    count = 0
    while time.monotonic() - t0 < bound:
        count = len(await asyncio.to_thread(containers_of, srv.tag, True))
        if count >= warm:
            await asyncio.sleep(2.0)  # the last ones' agents say hello
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - t0, count


# --------------------------------------------------------------------------- client


class RunClient(Peer):
    """A y-websocket peer on the extension channel that puts files in the room and runs them."""

    def __init__(self) -> None:
        super().__init__()
        self.doc = Doc()
        self.files = self.doc.get("files", type=Map)
        loop = asyncio.get_running_loop()
        self.hello: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.pending: asyncio.Future[dict[str, Any]] | None = None
        self.t_sent = 0.0
        self.run_id: str | None = None
        self.t_started = 0.0
        self.t_first_output = 0.0
        #: The first stdout chunk of the current run, and time.time() when it arrived.
        self.first_stdout: tuple[float, str] | None = None
        self.stdout: list[str] = []
        self.notices: list[dict[str, Any]] = []

    def on_open(self) -> None:
        self.send(sync_step1(self.doc.get_state()))

    def put_file(self, name: str, source: str) -> None:
        state = self.doc.get_state()
        with self.doc.transaction():
            self.files[name] = Text(source)
        self.send(sync_update(self.doc.get_update(state)))

    def request_run(self) -> asyncio.Future[dict[str, Any]]:
        """Sends ``run``; the future ends with the run.exit body, or the refusing notice."""
        self.pending = asyncio.get_running_loop().create_future()
        self.run_id = None
        self.t_started = self.t_first_output = 0.0
        self.first_stdout = None
        self.stdout = []
        self.t_sent = time.perf_counter()
        self.send(RUN_REQUEST)
        return self.pending

    def on_message(self, payload: bytes, now: int) -> None:
        if payload[0] != MESSAGE_ROOM:
            super().on_message(payload, now)
            return
        t = time.perf_counter()
        wall = time.time()
        for message in parse_frame(payload):
            if message.kind is MessageKind.ROOM:
                self.on_room(msgspec.msgpack.decode(message.payload), t, wall)

    def on_room(self, body: dict[str, Any], t: float, wall: float) -> None:
        kind = body.get("type")
        pending = self.pending
        if kind == "hello":
            if not self.hello.done():
                self.hello.set_result(body)
        elif kind == "notice":
            self.notices.append(body)
            if body.get("level") == "error" and pending is not None and not pending.done():
                pending.set_result({**body, "t": t})
        elif pending is None or pending.done():
            return
        elif kind == "run.started":
            if self.run_id is None:
                self.run_id = body["run"]
                self.t_started = t
        elif kind == "run.output":
            if self.run_id is not None and body["run"] != self.run_id:
                return
            if not self.t_first_output:
                self.t_first_output = t
            if body["stream"] == "stdout":
                if self.first_stdout is None:
                    self.first_stdout = (wall, body["data"])
                self.stdout.append(body["data"])
        elif kind == "run.exit" and (self.run_id is None or body["run"] == self.run_id):
            pending.set_result({**body, "t": t})

    def on_closed(self) -> None:
        super().on_closed()
        err = ConnectionError(f"socket closed (code {self.close_code}, {self.error})")
        if not self.hello.done():
            self.hello.set_exception(err)
        if self.pending is not None and not self.pending.done():
            self.pending.set_exception(err)


async def connect(srv: Server, room: str, token: str, source: str) -> RunClient:
    """A client in ``room`` (new: it owns it) with ``main.py`` in place and echoed back."""
    client: RunClient = await open_ws(RunClient, srv.port, f"/rooms/{room}?ext=1", token=token)  # type: ignore[assignment]
    await asyncio.wait_for(asyncio.shield(client.synced), 15)
    hello = await asyncio.wait_for(asyncio.shield(client.hello), 15)
    if not hello.get("can_edit"):
        raise RuntimeError(f"{room}: not an editor ({hello.get('role')}): runs would be refused")
    client.put_file("main.py", source)
    deadline = time.monotonic() + 15
    while client.updates < 1:  # the server echoes the update: it has it
        if time.monotonic() > deadline:
            raise RuntimeError(f"{room}: main.py not echoed in 15 s")
        await asyncio.sleep(0.005)
    return client


async def one_run(client: RunClient, timeout: float) -> dict[str, Any]:
    """One run: the exit (or refusal) body, with ms from request to exit ("ms")."""
    fut = client.request_run()
    try:
        body = await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        return {"type": "timeout", "ms": timeout * 1000}
    return {
        **body,
        "ms": (body["t"] - client.t_sent) * 1000,
        "started_ms": (client.t_started - client.t_sent) * 1000 if client.t_started else None,
        "stdout": "".join(client.stdout),
    }


# --------------------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    """The same percentile as common.LatencyStats (nearest rank from below)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def f1(v: float | None) -> str:
    return "-" if v is None or v != v else (f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}")


def outcome_counts(results: list[dict[str, Any]]) -> dict[str, int]:
    """exit statuses and refusal codes: {"ok": 98, "notice:run-busy": 2, ...}."""
    c: collections.Counter[str] = collections.Counter()
    for r in results:
        if r.get("type") == "run.exit":
            c[r["status"]] += 1
        elif r.get("type") == "notice":
            c[f"refused:{r.get('code')}"] += 1
        else:
            c[str(r.get("type"))] += 1
    return dict(c)


def met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


# --------------------------------------------------------------------------- phases


async def phase_hello(srv: RunServer, runs: int, timeout: float) -> dict[str, Any]:
    client = await connect(srv, "runs-hello", user_token(srv, "seq"), HELLO_PY)
    try:
        first = await one_run(client, timeout)
        results = []
        meter = Meter(srv)
        for _ in range(runs):
            results.append(await one_run(client, timeout))
        meter.stop()
    finally:
        await close_all([client])
    good = [r for r in results if r.get("status") == "ok" and r.get("stdout") == "hello\n"]
    ms = [r["ms"] for r in good]
    started = [r["started_ms"] for r in good if r["started_ms"] is not None]
    walls = [float(r["wall_ms"]) for r in good if r.get("wall_ms") is not None]
    return {
        "runs": runs,
        "good": len(good),
        "outcomes": outcome_counts(results),
        "first_ms": first["ms"],
        "first_status": first.get("status") or first.get("code") or first.get("type"),
        "p50_ms": pct(ms, 0.5),
        "p99_ms": pct(ms, 0.99),
        "min_ms": min(ms) if ms else float("nan"),
        "max_ms": max(ms) if ms else float("nan"),
        # 1-based numbers of the three slowest runs (a container is replaced every
        # --runs-per-container runs, 50 by default)
        "slowest": sorted(range(1, len(results) + 1), key=lambda i: -results[i - 1]["ms"])[:3],
        "started_p50_ms": pct(started, 0.5),
        "program_wall_p50_ms": pct(walls, 0.5),
        "server_cpu_ms_per_run": meter.server_cpu * 1000 / max(1, runs),
        "other_cpu_pct": meter.other_pct,
    }


async def phase_first_output(srv: RunServer, runs: int, timeout: float) -> dict[str, Any]:
    client = await connect(srv, "runs-first-output", user_token(srv, "first"), STAMP_PY)
    lat: list[float] = []
    results = []
    bad = 0
    try:
        await one_run(client, timeout)  # untimed: takes this user's container
        for _ in range(runs):
            r = await one_run(client, timeout)
            results.append(r)
            got = client.first_stdout
            try:
                printed = float(got[1].split("\n", 1)[0]) if got else None
            except ValueError:
                printed = None
            if r.get("status") != "ok" or got is None or printed is None:
                bad += 1
                continue
            lat.append((got[0] - printed) * 1000)
    finally:
        await close_all([client])
    return {
        "runs": runs,
        "good": len(lat),
        "bad": bad,
        "outcomes": outcome_counts(results),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "min_ms": min(lat) if lat else float("nan"),
        "max_ms": max(lat) if lat else float("nan"),
    }


class HostProbe:
    """Over one window: each CPU's busy % (``/proc/stat`` cpuN lines) and the CPU % of some
    processes (the workers): where the time went when workers are pinned to CPUs."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.c0 = per_cpu_busy_seconds()
        self.p0 = sum(pid_cpu_seconds(p) for p in pids)
        self.per_cpu_pct: list[float] = []
        self.pids_pct = 0.0

    def stop(self) -> HostProbe:
        wall = time.monotonic() - self.t0
        c1 = per_cpu_busy_seconds()
        self.per_cpu_pct = [100.0 * (b - a) / wall for a, b in zip(self.c0, c1, strict=False)]
        self.pids_pct = 100.0 * (sum(pid_cpu_seconds(p) for p in self.pids) - self.p0) / wall
        return self


def per_cpu_busy_seconds() -> list[float]:
    """Busy seconds (not idle, not I/O wait) of each CPU, from /proc/stat."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0].startswith("cpu") and parts[0] != "cpu":
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, parts[1:9])
                out.append((user + nice + system + irq + softirq + steal) / CLK_TCK)
    return out


def pid_cpu_seconds(pid: int) -> float:
    """A process's CPU seconds; 0 once it is gone (a worker that died is in the outcomes)."""
    try:
        return proc_cpu_seconds(pid)
    except OSError:
        return 0.0


async def phase_sustained(
    srv: RunServer,
    users: int,
    seconds: float,
    timeout: float,
    *,
    source: str = HELLO_PY,
    stdout: str | None = None,
    warmup: float = 0.0,
    probe_pids: list[int] | None = None,
    tags: list[str] | None = None,
    rooms: str = "runs-sustained",
) -> dict[str, Any]:
    """``users`` users each run ``source`` back to back; runs/s over ``seconds``.

    After one untimed run each, the users run for ``warmup`` + ``seconds``; only the
    ``run.exit`` (status ok, and ``stdout`` if given) received in the last ``seconds``
    count, and the CPU meters cover just that window: a steady state, not the ramp-up
    (with runs of 0.5 s and a queue, the first exits come late) nor the tail.
    ``tags``: the processes whose containers are counted at the window's ends (a
    container made inside the window is CPU not spent on runs).
    """
    clients = [
        await connect(srv, f"{rooms}-{i}", user_token(srv, f"s{i}"), source) for i in range(users)
    ]
    max_runs = int((warmup + seconds) * 200)  # a bound on the loop, far above any rate reached
    count_containers = functools.partial(count_containers_of, tags or [srv.tag])
    try:
        await asyncio.gather(*(one_run(c, timeout) for c in clients))  # untimed
        results: list[list[dict[str, Any]]] = [[] for _ in clients]
        start = time.perf_counter() + warmup
        deadline = start + seconds

        async def loop(i: int) -> None:
            c = clients[i]
            while time.perf_counter() < deadline and len(results[i]) < max_runs:
                r = await one_run(c, timeout)
                r["in_window"] = start <= r.get("t", float("inf")) <= deadline
                results[i].append(r)

        async def measure() -> tuple[Meter, HostProbe, int, int]:
            await asyncio.sleep(max(0.0, start - time.perf_counter() - 0.2))
            before = await asyncio.to_thread(count_containers)
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
            meter, probe = Meter(srv), HostProbe(probe_pids or [])
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            meter.stop()
            probe.stop()
            return meter, probe, before, await asyncio.to_thread(count_containers)

        measuring = asyncio.ensure_future(measure())
        await asyncio.gather(*(loop(i) for i in range(users)))
        meter, probe, before, after = await measuring
    finally:
        await close_all(clients)  # type: ignore[arg-type]
    flat = [r for rs in results for r in rs]
    window = [r for r in flat if r["in_window"]]
    counted = [
        r
        for r in window
        if r.get("status") == "ok" and (stdout is None or r.get("stdout") == stdout)
    ]
    ms = [r["ms"] for r in counted]
    return {
        "users": users,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "runs_ok_in_window": len(counted),
        "wrong_output": sum(1 for r in window if r.get("status") == "ok") - len(counted),
        "runs_per_second": len(counted) / seconds,
        "outcomes": outcome_counts(flat),
        "p50_ms": pct(ms, 0.5),
        "p99_ms": pct(ms, 0.99),
        "program_cpu_ms_p50": pct([float(r["cpu_ms"]) for r in counted if "cpu_ms" in r], 0.5),
        # the programs' own CPU (their containers' cgroups), of the runs ended in the window
        "programs_cpu_pct": sum(float(r.get("cpu_ms") or 0.0) for r in window) / seconds / 10,
        "program_wall_ms_p50": pct([float(r["wall_ms"]) for r in counted if "wall_ms" in r], 0.5),
        "server_cpu_pct": meter.server_pct,
        "gen_cpu_pct": meter.gen_pct,
        "other_cpu_pct": meter.other_pct,
        "per_cpu_pct": probe.per_cpu_pct,
        "probed_cpu_pct": probe.pids_pct,
        "containers_made_in_window": max(0, after - before),
    }


async def phase_burst(srv: RunServer, n: int, label: str, timeout: float) -> dict[str, Any]:
    clients: list[RunClient] = []
    try:
        sem = asyncio.Semaphore(16)

        async def join(i: int) -> RunClient:
            async with sem:
                return await connect(
                    srv, f"runs-burst-{label}-{n}-{i}", user_token(srv, f"b{i}"), HELLO_PY
                )

        clients = list(await asyncio.gather(*(join(i) for i in range(n))))
        await asyncio.sleep(0.5)
        meter = Meter(srv)
        t0 = time.perf_counter()
        futures = [c.request_run() for c in clients]  # one loop iteration: no await between
        sent_ms = (time.perf_counter() - t0) * 1000
        done, _ = await asyncio.wait(futures, timeout=timeout)
        meter.stop()
    finally:
        await close_all(clients)  # type: ignore[arg-type]
    outcomes: list[dict[str, Any]] = []
    for f in futures:
        if f in done and f.exception() is None:
            outcomes.append(f.result())
        elif f in done:
            outcomes.append({"type": f"error: {f.exception()}"})
        else:
            outcomes.append({"type": "timeout"})
    exits = [o for o in outcomes if o.get("type") == "run.exit"]
    ok = [o for o in exits if o.get("status") == "ok"]
    refused = [o for o in outcomes if o.get("type") == "notice"]
    exit_ms = sorted((o["t"] - t0) * 1000 for o in exits)
    return {
        "users": n,
        "pool": label,
        "finished": len(exits),
        "ok": len(ok),
        "refused": len(refused),
        "refusal_codes": dict(collections.Counter(str(o.get("code")) for o in refused)),
        "outcomes": outcome_counts(outcomes),
        "sent_ms": sent_ms,
        "first_exit_ms": exit_ms[0] if exit_ms else float("nan"),
        "p50_exit_ms": pct(exit_ms, 0.5),
        "last_exit_s": exit_ms[-1] / 1000 if exit_ms else float("nan"),
        "server_cpu_pct": meter.server_pct,
        "other_cpu_pct": meter.other_pct,
        "wall_s": meter.wall,
    }


# --------------------------------------------------------------------------- workers

#: A workers row whose "rest CPU%" (neither the programs, nor the server, workers and
#: client) is above this was disturbed by something else on the host: measured once more.
REST_CPU_LIMIT = 40.0
#: ``--runs-per-container`` of the workers comparison (default 50): a container is replaced
#: after that many runs, a cost per run that is the same for one worker or two; with 1000
#: none is replaced during a round, so a measured window holds runs, not container turnover.
RUNS_PER_CONTAINER = 1000
#: Iterations of the ``cpu`` workload's loop: about 0.1 s of one CPU in the run image here.
CPU_LOOPS = 1_500_000


@dataclass(frozen=True)
class Workload:
    """A program the users run back to back in the workers comparison, and what bounds it."""

    name: str
    source: str
    #: The stdout a run must print to count.
    stdout: str
    about: str
    #: Seconds the program waits (``wait``): the ceiling is slots / this.
    wait_seconds: float = 0.0


def workloads(wait_seconds: float) -> dict[str, Workload]:
    n = CPU_LOOPS
    return {
        "hello": Workload(
            "hello", HELLO_PY, "hello\n", 'print("hello"): the whole path\'s overhead'
        ),
        "cpu": Workload(
            "cpu",
            f"n = 0\nfor i in range({n}):\n    n += i * i\nprint(n)\n",
            f"{(n - 1) * n * (2 * n - 1) // 6}\n",  # the sum of i*i below n
            f"a loop of {n:,} additions (~0.1 s of CPU): bound by CPU",
        ),
        "wait": Workload(
            "wait",
            f'import time\ntime.sleep({wait_seconds})\nprint("done")\n',
            "done\n",
            f"time.sleep({wait_seconds}) (a program waiting, as on input): bound by slots",
            wait_seconds,
        ),
    }


def count_containers_of(tags: list[str]) -> int:
    return sum(len(containers_of(t)) for t in tags)


def cpusets_of(tags: list[str]) -> list[str]:
    """The distinct ``HostConfig.CpusetCpus`` of these processes' containers ("" = any)."""
    ids = [c for t in tags for c in containers_of(t)]
    if not ids:
        return []
    out = docker("inspect", "--format", "{{.HostConfig.CpusetCpus}}", *ids, timeout=60)
    return sorted({line.strip() for line in out.stdout.splitlines()})


class WorkerProc:
    """One ``opencode-live worker`` process; stopped by its PID, its containers removed."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        *,
        warm: int,
        max_containers: int,
        slots: int | None = None,
        cpuset: str | None = None,
    ) -> None:
        import os
        import tempfile

        from executor.cgroups import process_start_time

        self.cpuset = cpuset
        flags = ["--run-pool-warm", str(warm), "--run-pool-max", str(max_containers)]
        flags += ["--runs-per-container", str(RUNS_PER_CONTAINER)]
        if slots is not None:
            flags += ["--worker-slots", str(slots)]
        if cpuset is not None:
            flags += ["--worker-cpuset", cpuset]
        self.log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "worker",
                "--redis-url",
                redis_url,
                "--run-queue-prefix",
                prefix,
                *flags,
                "--log-level",
                "warning",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        self.tag = f"{self.proc.pid}:{process_start_time(self.proc.pid) or '?'}"

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        """SIGTERM (it finishes its runs and removes its containers), then what it left."""
        self.terminate()
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        left = containers_of(self.tag)
        if left:
            docker("rm", "-f", *left, timeout=120)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def log_tail(self, n: int = 1500) -> str:
        return Path(self.log.name).read_bytes()[-n:].decode("utf-8", "replace")


def delete_redis_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def prime(
    srv: RunServer, users: int, tags: list[str], target: int, bound: float
) -> tuple[float, int]:
    """Users run hello world back to back until ``tags``' processes hold ``target``
    containers (every user one on every worker, plus the warm ones) or ``bound`` s pass.

    A user's job goes to whichever worker reads it first, so which worker has met whom
    is chance; a user's first job on a worker makes a container there (~0.1-0.3 s of the
    Engine's CPU), and those must not fall in a measured window. Returns (seconds, count).
    """
    clients = [
        await connect(srv, f"runs-prime-{i}", user_token(srv, f"s{i}"), HELLO_PY)
        for i in range(users)
    ]
    t0 = time.monotonic()
    count = 0
    done = asyncio.Event()

    async def loop(c: RunClient) -> None:
        while not done.is_set():
            await one_run(c, 30.0)

    loops = [asyncio.ensure_future(loop(c)) for c in clients]
    try:
        while time.monotonic() - t0 < bound:
            count = await asyncio.to_thread(count_containers_of, tags)
            if count >= target:
                break
            await asyncio.sleep(1.0)
    finally:
        done.set()
        await asyncio.gather(*loops, return_exceptions=True)
        await close_all(clients)  # type: ignore[arg-type]
    return time.monotonic() - t0, count


async def workers_row(
    args: Any, srv: RunServer, work: Workload, workers: list[WorkerProc], rep: int
) -> dict[str, Any]:
    """One row: ``work`` run by ``args.sustain_users`` users through ``workers`` (none: the
    server's own engine), in rooms of the row's own."""
    n = len(workers)
    label = work.name + (f" #{rep + 1}" if args.repeat > 1 else "")
    print(
        f"{label}: {n or 'no'} worker(s), {args.sustain_users} users x "
        f"{args.sustain_seconds:.0f}s (after {args.warmup_seconds:.0f}s) ...",
        flush=True,
    )
    tags = [w.tag for w in workers] or [srv.tag]
    for attempt in range(2):
        s = await phase_sustained(
            srv,
            args.sustain_users,
            args.sustain_seconds,
            args.run_timeout,
            source=work.source,
            stdout=work.stdout,
            warmup=args.warmup_seconds,
            probe_pids=[w.proc.pid for w in workers],
            tags=tags,
            rooms=f"runs-{work.name}-{n}-{attempt}",
        )
        # CPU that went neither to the programs nor to the workers (other CPU% holds both):
        # the Engine and Redis (some % here), and whatever else runs on the host meanwhile
        s["rest_cpu_pct"] = s["other_cpu_pct"] - s["programs_cpu_pct"] - s["probed_cpu_pct"]
        s["remeasured"] = attempt > 0
        if attempt or s["rest_cpu_pct"] <= REST_CPU_LIMIT:
            break
        print(
            f"  ({s['rest_cpu_pct']:.0f}% of a core went to neither the runs nor these "
            "processes: measured again if the host goes quiet)",
            flush=True,
        )
        if wait_quiet(max_wait=args.wait_quiet) >= QUIET_PCT:
            break
    s["cpusets"] = await asyncio.to_thread(cpusets_of, tags)
    s.update(
        workload=work.name,
        workers=n,
        repeat=rep,
        slots=args.worker_slots if n else None,
        # as the Engine reports them (docker inspect), not as asked for
        cpus=", ".join(c or "any" for c in s["cpusets"]) or "any",
        ceiling=n * args.worker_slots / work.wait_seconds if work.wait_seconds and n else None,
    )
    print(
        f"  {s['runs_per_second']:.1f} runs/s, p50 {f1(s['p50_ms'])} ms, p99 "
        f"{f1(s['p99_ms'])} ms, CPUs {' / '.join(f'{c:.0f}%' for c in s['per_cpu_pct'])}, "
        f"containers made {s['containers_made_in_window']}",
        flush=True,
    )
    return s


async def workers_round(
    args: Any, counts: list[int], kinds: list[Workload], rep: int
) -> list[dict[str, Any]]:
    """Every row once: one ``--run-queue redis`` server and max(N) workers (worker i's
    containers on CPU i with ``--pin auto``), primed; the rows with the most workers
    first, then the last workers are stopped (SIGTERM) for the rows with fewer, so the
    remaining ones keep their containers and nothing is made while measuring. Then, for
    N = 0, a server with its own engine (any CPU; it refuses a run when its containers
    are busy rather than queueing it, so no wait row).

    Each worker takes ``--worker-slots`` runs at once and may keep ``users + slots``
    containers: every user keeps one on every worker, none is evicted.
    """
    import os
    import uuid

    users, slots = args.sustain_users, args.worker_slots
    rows: list[dict[str, Any]] = []
    queued = sorted((n for n in set(counts) if n > 0), reverse=True)
    if queued:
        redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        prefix = f"bench:{uuid.uuid4().hex[:10]}:"
        ncpu = os.cpu_count() or 1
        workers: list[WorkerProc] = []
        wait_quiet(max_wait=args.wait_quiet)
        try:
            for i in range(queued[0]):
                workers.append(
                    WorkerProc(
                        redis_url,
                        prefix,
                        warm=slots,
                        max_containers=users + slots,
                        slots=slots,
                        cpuset=str(i % ncpu) if args.pin == "auto" else None,
                    )
                )
            flags = ["--run-queue", "redis", "--redis-url", redis_url]
            # the room bus and the shared run slots too: every key under the run's prefix
            flags += ["--run-queue-prefix", prefix, "--bus-prefix", f"{prefix}bus:"]
            with RunServer([*flags, "--run-pool-warm", "0"]) as srv:
                await wait_runs_ready(srv)
                for w in workers:
                    if w.proc.poll() is not None:
                        raise RuntimeError(f"worker {w.proc.pid} exited:\n{w.log_tail()}")
                    await wait_pool_warm(w, slots, args.warm_timeout)
                target = len(workers) * (users + slots)
                took, count = await prime(
                    srv, users, [w.tag for w in workers], target, args.prime_timeout
                )
                print(f"primed: {count}/{target} containers after {took:.1f}s", flush=True)
                for n in queued:
                    while len(workers) > n:
                        workers.pop().stop()
                    for work in kinds:
                        rows.append(await workers_row(args, srv, work, workers, rep))
                if log := srv.errors_in_log():
                    rows[-1]["server_log"] = log[-1500:]
        finally:
            for w in workers:
                w.terminate()  # all at once: each removes its own containers
            for w in workers:
                w.stop()
            delete_redis_prefix(redis_url, prefix)
    own = [k for k in kinds if not k.wait_seconds]
    if 0 in counts and own:
        wait_quiet(max_wait=args.wait_quiet)
        own_flags = ["--run-pool-warm", str(slots), "--run-pool-max", str(users + slots)]
        own_flags += ["--runs-per-container", str(RUNS_PER_CONTAINER)]
        with RunServer(own_flags) as srv:
            await wait_runs_ready(srv)
            await wait_pool_warm(srv, slots, args.warm_timeout)
            await prime(srv, users, [srv.tag], users + slots, args.prime_timeout)
            for work in own:
                rows.append(await workers_row(args, srv, work, [], rep))
    return rows


async def phase_workers(args: Any, counts: list[int], names: list[str]) -> list[dict[str, Any]]:
    """Every row, ``--repeat`` times; each round has fresh processes, so a repeat's spread
    includes start-up luck (which containers landed where) as well as other processes'
    noise on the host."""
    kinds = [workloads(args.wait_seconds)[name] for name in names]
    rows = []
    for rep in range(args.repeat):
        rows += await workers_round(args, counts, kinds, rep)
    return rows


def spread(values: list[float], digits: int = 1) -> str:
    """median (min-max), or the one value."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def is_quiet(row: dict[str, Any]) -> bool:
    """Whether little else ran on the host during the row (see ``REST_CPU_LIMIT``)."""
    return row["rest_cpu_pct"] <= REST_CPU_LIMIT


def workers_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (workload, N), over the repeats: runs/s and latencies of every row, and runs/s
    of the quiet rows alone; the ratio to one worker, repeat by repeat (the rows of one
    round ran a minute or two apart), from the rounds where both rows were quiet if any."""
    out = []
    keys = sorted({(r["workload"], r["workers"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for workload, n in keys:
        mine = [r for r in rows if r["workload"] == workload and r["workers"] == n]
        ones = {r["repeat"]: r for r in rows if r["workload"] == workload and r["workers"] == 1}
        pairs = [
            (r, ones[r["repeat"]])
            for r in mine
            if r["repeat"] in ones and ones[r["repeat"]]["runs_per_second"] > 0
        ]
        quiet_pairs = [(r, o) for r, o in pairs if is_quiet(r) and is_quiet(o)]
        out.append(
            {
                "workload": workload,
                "workers": n,
                "cpus": mine[0]["cpus"],
                "repeats": len(mine),
                "runs_per_second": [r["runs_per_second"] for r in mine],
                "quiet_runs_per_second": [r["runs_per_second"] for r in mine if is_quiet(r)],
                "p50_ms": [r["p50_ms"] for r in mine],
                "p99_ms": [r["p99_ms"] for r in mine],
                "vs_one_worker": [
                    r["runs_per_second"] / o["runs_per_second"] for r, o in quiet_pairs or pairs
                ],
                "ratio_from": "quiet rounds" if quiet_pairs else "all rounds",
                "ceiling": mine[0]["ceiling"],
            }
        )
    return out


def report_workers(rows: list[dict[str, Any]], users: int, about: dict[str, str]) -> str:
    parts = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == workload]
        parts.append(
            table(
                [
                    "round",
                    "workers",
                    "containers on",
                    "slots",
                    "runs ok",
                    "runs/s",
                    "ceiling/s",
                    "p50 ms",
                    "p99 ms",
                    "prog CPU ms",
                    "CPU0% / CPU1%",
                    "progs CPU%",
                    "srv CPU%",
                    "workers CPU%",
                    "rest CPU%",
                    "made",
                    "outcomes",
                ],
                [
                    [
                        s["repeat"] + 1,
                        s["workers"] or "0 (own engine)",
                        f"CPU {s['cpus']}" if s["cpus"] != "any" else "any CPU",
                        s["slots"] or "-",
                        s["runs_ok_in_window"],
                        f"{s['runs_per_second']:.1f}",
                        f"{s['ceiling']:.0f}" if s["ceiling"] else "-",
                        f1(s["p50_ms"]),
                        f1(s["p99_ms"]),
                        f1(s["program_cpu_ms_p50"]),
                        " / ".join(f"{c:.0f}" for c in s["per_cpu_pct"]),
                        f"{s['programs_cpu_pct']:.0f}",
                        f"{s['server_cpu_pct']:.0f}",
                        f"{s['probed_cpu_pct']:.0f}" if s["workers"] else "-",
                        f"{s['rest_cpu_pct']:.0f}",
                        s["containers_made_in_window"],
                        ", ".join(f"{k} {v}" for k, v in s["outcomes"].items())
                        + (f", wrong output {s['wrong_output']}" if s["wrong_output"] else "")
                        + (" (measured again)" if s["remeasured"] else ""),
                    ]
                    for s in mine
                ],
                f"(f5) workload {workload}: {about[workload]}; {users} users run it back to "
                "back, runs/s over the window; a --run-queue redis server and N worker "
                "processes on this one host (server, Redis, Docker Engine and this client "
                "share its CPUs; progs CPU% = the programs' containers, rest CPU% = what "
                "neither they nor server, workers and client used: Engine, Redis, others)",
            )
        )
    summary = workers_summary(rows)
    parts.append(
        table(
            [
                "workload",
                "workers",
                "containers on",
                "rows",
                "runs/s",
                "quiet rows",
                "runs/s quiet",
                "x 1 worker",
                "p50 ms",
                "p99 ms",
            ],
            [
                [
                    s["workload"],
                    s["workers"] or "0 (own engine)",
                    f"CPU {s['cpus']}" if s["cpus"] != "any" else "any CPU",
                    s["repeats"],
                    spread(s["runs_per_second"]),
                    len(s["quiet_runs_per_second"]),
                    spread(s["quiet_runs_per_second"]),
                    "1"
                    if s["workers"] == 1
                    else f"{spread(s['vs_one_worker'], 2)} ({s['ratio_from']})",
                    spread(s["p50_ms"], 0),
                    spread(s["p99_ms"], 0),
                ]
                for s in summary
            ],
            "(f5) summary: median (min-max) over the rows; quiet: rest CPU% <= "
            f"{REST_CPU_LIMIT:.0f} (little else ran on the host); x 1 worker = runs/s against "
            "the one-worker row of the same round",
        )
    )
    for s in rows:
        if s.get("server_log"):
            parts.append(f"server printed ({s['workload']}, {s['workers']}):\n{s['server_log']}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- report


def report(r: dict[str, Any], image: str) -> str:
    parts = []
    h, d = r["hello"], r["docker_run"]
    rows = [
        [
            "room socket: run -> run.exit",
            f"{h['good']}/{h['runs']}",
            f1(h["p50_ms"]),
            f1(h["p99_ms"]),
            f1(h["min_ms"]),
            f1(h["max_ms"]),
            f"{f1(h['first_ms'])} ({h['first_status']})",
            f"< {TARGETS['hello_p50']:.0f} / < {TARGETS['hello_p99']:.0f}",
            met(h["p50_ms"] < TARGETS["hello_p50"] and h["p99_ms"] < TARGETS["hello_p99"]),
        ],
        [
            "docker run --rm --network none",
            f"{d['good']}/{d['runs']}",
            f1(d["p50_ms"]),
            f1(d["p99_ms"]),
            f1(d["min_ms"]),
            f1(d["max_ms"]),
            "-",
            "(for comparison)",
            "-",
        ],
    ]
    parts.append(
        table(
            ["path", "ok", "p50 ms", "p99 ms", "min ms", "max ms", "first ms", "target", "met"],
            rows,
            f'(f1) hello world (print("hello")): {h["runs"]} sequential runs, one user, one '
            f"room; docker run of {image} {d['runs']} times",
        )
        + f"\n  room runs: run.started p50 {f1(h['started_p50_ms'])} ms after the request; "
        f"program wall time p50 {f1(h['program_wall_p50_ms'])} ms (run.exit wall_ms); "
        f"slowest runs: #{', #'.join(map(str, h['slowest']))}; "
        f"server CPU {f1(h['server_cpu_ms_per_run'])} ms/run; other CPU "
        f"{h['other_cpu_pct']:.0f}%; outcomes {h['outcomes']}"
        + (f"\n  docker run errors: {d['errors'][:3]}" if d["errors"] else "")
    )
    fo = r["first_output"]
    parts.append(
        table(
            ["ok", "p50 ms", "p99 ms", "min ms", "max ms", "target", "met"],
            [
                [
                    f"{fo['good']}/{fo['runs']}",
                    f1(fo["p50_ms"]),
                    f1(fo["p99_ms"]),
                    f1(fo["min_ms"]),
                    f1(fo["max_ms"]),
                    f"p50 < {TARGETS['first_output_p50']:.0f}",
                    met(fo["p50_ms"] < TARGETS["first_output_p50"]),
                ]
            ],
            "(f2) first output byte: printed time.time() -> run.output received "
            f"(same host clock), {fo['runs']} runs",
        )
    )
    rows = []
    for b in r["bursts"]:
        good = b["finished"] == b["users"] and b["ok"] == b["users"] and b["refused"] == 0
        rows.append(
            [
                b["pool"],
                b["users"],
                f"{b['warm_wait_s']:.1f} ({b['warm_running']})",
                f"{b['ok']}/{b['users']}",
                b["refused"],
                ", ".join(f"{k} {v}" for k, v in b["refusal_codes"].items()) or "-",
                f"{b['first_exit_ms']:.0f}",
                f"{b['p50_exit_ms']:.0f}",
                f"{b['last_exit_s']:.2f}",
                f"{b['server_cpu_pct']:.0f}",
                f"{b['other_cpu_pct']:.0f}",
                f"all ok, 0 refused, < {TARGETS['burst_seconds']:.0f} s",
                met(good and b["last_exit_s"] < TARGETS["burst_seconds"]),
            ]
        )
    parts.append(
        table(
            [
                "pool",
                "users",
                "warm wait s (running)",
                "ok",
                "refused",
                "codes",
                "first exit ms",
                "p50 exit ms",
                "last exit s",
                "srv CPU%",
                "other CPU%",
                "target",
                "met",
            ],
            rows,
            "(f3) burst: N users, each in their own room, send run at once -> last run.exit "
            "(fresh server each; other CPU% includes the Docker Engine)",
        )
    )
    s = r["sustained"]
    parts.append(
        table(
            [
                "users",
                "seconds",
                "runs ok",
                "runs/s",
                "p50 ms",
                "p99 ms",
                "srv CPU%",
                "gen CPU%",
                "other CPU%",
                "target",
                "met",
            ],
            [
                [
                    s["users"],
                    f"{s['seconds']:.0f}",
                    s["runs_ok_in_window"],
                    f"{s['runs_per_second']:.1f}",
                    f1(s["p50_ms"]),
                    f1(s["p99_ms"]),
                    f"{s['server_cpu_pct']:.0f}",
                    f"{s['gen_cpu_pct']:.0f}",
                    f"{s['other_cpu_pct']:.0f}",
                    f">= {TARGETS['sustained_rps']:.0f}/s",
                    met(s["runs_per_second"] >= TARGETS["sustained_rps"]),
                ]
            ],
            f"(f4) sustained: {s['users']} users in {s['users']} rooms run back to back; "
            f"outcomes {s['outcomes']}",
        )
    )
    for log in r.get("server_logs", []):
        parts.append(f"server printed:\n{log[-1500:]}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- main


async def bench(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"server_logs": []}
    wait_quiet(max_wait=args.wait_quiet)
    print(
        f"docker run --rm --network none {args.image} python3 -c ... x{args.docker_runs}",
        flush=True,
    )
    times, errors = await asyncio.to_thread(docker_run_times, args.image, args.docker_runs)
    out["docker_run"] = {
        "runs": args.docker_runs,
        "good": len(times),
        "errors": errors,
        "p50_ms": pct(times, 0.5),
        "p99_ms": pct(times, 0.99),
        "min_ms": min(times) if times else float("nan"),
        "max_ms": max(times) if times else float("nan"),
    }

    wait_quiet(max_wait=args.wait_quiet)
    with RunServer([]) as srv:
        await wait_runs_ready(srv)
        waited, running = await wait_pool_warm(srv, 4, args.warm_timeout)
        print(f"server up, pool warm after {waited:.1f}s ({running} running)", flush=True)
        print(f"hello world x{args.seq_runs} ...", flush=True)
        out["hello"] = await phase_hello(srv, args.seq_runs, args.run_timeout)
        print(f"first output x{args.first_output_runs} ...", flush=True)
        out["first_output"] = await phase_first_output(
            srv, args.first_output_runs, args.run_timeout
        )
        print(f"sustained {args.sustain_users} users x {args.sustain_seconds:.0f}s ...", flush=True)
        out["sustained"] = await phase_sustained(
            srv, args.sustain_users, args.sustain_seconds, args.run_timeout
        )
        if log := srv.errors_in_log():
            out["server_logs"].append(log)

    out["bursts"] = []
    pools = [
        ("warm4", 4, []),
        (
            f"warm{args.burst_warm}",
            args.burst_warm,
            ["--run-pool-warm", str(args.burst_warm), "--run-pool-max", str(args.burst_max)],
        ),
    ]
    sizes = [int(x) for x in args.bursts.split(",") if x.strip()]
    for label, warm, flags in pools:
        for n in sizes:
            wait_quiet(max_wait=args.wait_quiet)
            with RunServer(flags) as srv:
                await wait_runs_ready(srv)
                waited, running = await wait_pool_warm(srv, warm, args.warm_timeout)
                print(
                    f"burst {n} users, pool {label}: warm after {waited:.1f}s "
                    f"({running} running) ...",
                    flush=True,
                )
                b = await phase_burst(srv, n, label, args.burst_timeout)
                b["warm_wait_s"] = waited
                b["warm_running"] = running
                out["bursts"].append(b)
                print(
                    f"  last run.exit {b['last_exit_s']:.2f}s, ok {b['ok']}/{n}, "
                    f"refused {b['refused']}",
                    flush=True,
                )
                if log := srv.errors_in_log():
                    out["server_logs"].append(log)
    return out


async def main() -> int:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--image", default=IMAGE, help="the run image (for the docker run column)")
    p.add_argument("--seq-runs", type=int, default=100)
    p.add_argument("--docker-runs", type=int, default=20)
    p.add_argument("--first-output-runs", type=int, default=50)
    p.add_argument("--bursts", default="30,60", help="burst sizes (users), comma-separated")
    p.add_argument("--burst-warm", type=int, default=60, help="warm pool of the second burst")
    p.add_argument("--burst-max", type=int, default=64, help="--run-pool-max with it")
    p.add_argument("--burst-timeout", type=float, default=60.0, help="bound on one burst (s)")
    p.add_argument("--sustain-users", type=int, default=None, help="(4; 16 with --workers)")
    p.add_argument(
        "--workers",
        default="",
        metavar="N,M",
        help="only compare runs/s through the Redis run queue with N, then M worker "
        "processes (0: no queue, the server's own engine, as a baseline; not for wait)",
    )
    p.add_argument(
        "--workload",
        default="cpu,wait",
        help="with --workers: what the users run, comma-separated: cpu (~0.1 s of CPU), "
        "wait (sleeps --wait-seconds), hello (print)",
    )
    p.add_argument(
        "--worker-slots", type=int, default=4, help="with --workers: runs each worker takes at once"
    )
    p.add_argument(
        "--pin",
        choices=("auto", "none"),
        default="auto",
        help="with --workers: auto pins worker i's containers to CPU i (none: any CPU)",
    )
    p.add_argument("--wait-seconds", type=float, default=0.5, help="the wait workload's sleep")
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        help="runs before the measured window (0; 3 with --workers)",
    )
    p.add_argument("--repeat", type=int, default=1, help="with --workers: rounds of every row")
    p.add_argument(
        "--prime-timeout",
        type=float,
        default=60.0,
        help="with --workers: bound on making every user a container on every worker (s)",
    )
    p.add_argument("--sustain-seconds", type=float, default=10.0)
    p.add_argument("--run-timeout", type=float, default=30.0, help="bound on one run (s)")
    p.add_argument("--warm-timeout", type=float, default=90.0, help="bound on a pool warm-up (s)")
    args = parse_args(p)
    if args.sustain_users is None:
        args.sustain_users = 16 if args.workers else 4
    if args.warmup_seconds is None:
        args.warmup_seconds = 3.0 if args.workers else 0.0
    names = [x.strip() for x in args.workload.split(",") if x.strip()]
    unknown = set(names) - set(workloads(args.wait_seconds))
    if unknown or args.repeat < 1 or args.worker_slots < 1:
        p.error(f"bad --workload {', '.join(sorted(unknown))} or --repeat/--worker-slots < 1")
    kinds = servers_of(args.server)
    if "reference" in kinds:
        print("(the reference server has no runs: runs.py measures ours only)")
    if "ours" not in kinds:
        Results("runs", {"results": {}}).save(args.json)
        return 0
    started = time.monotonic()
    try:
        version = check_docker(args.image)
        print(f"Docker Engine {version}, image {args.image}", flush=True)
        if args.workers:
            counts = [int(x) for x in args.workers.split(",") if x.strip()]
            rows = await phase_workers(args, counts, names)
            print()
            about = {k: w.about for k, w in workloads(args.wait_seconds).items()}
            print(report_workers(rows, args.sustain_users, about))
            print(f"\n(runs.py --workers: {time.monotonic() - started:.0f} s in all)")
            summary = workers_summary(rows)
            Results(
                "runs", {"results": {"ours": {"workers": rows, "workers_summary": summary}}}
            ).save(args.json)
            return 0
        res = await bench(args)
    except Unavailable as exc:
        print(f"runs.py: cannot measure runs: {exc}", file=sys.stderr)
        return 2
    print()
    print(report(res, args.image))
    print(f"\n(runs.py: {time.monotonic() - started:.0f} s in all)")
    Results("runs", {"results": {"ours": res}}).save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
