"""Runs of jobs in a pool of sandbox containers on a Docker Engine.

How a run goes: the pool hands over a container of the right shape (kept for
this owner, else a warm one, else a new one); the container's agent (see
``agent.py``, started once per container) is sent the files, command and
stdin; it forks the program and streams its stdout/stderr back; the executor
enforces the wall time, the output cap and ``stop()`` by telling the agent to
kill every process of the runner user (and destroys the container if the
agent does not answer); when the program ends the agent kills what is left,
wipes the writable places and reports. The result takes CPU time, peak memory
and OOM kills from the container's cgroup, read from the host where reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import signal as signals
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cgroups import CgroupStats, process_alive, this_process_tag
from .config import ExecutorConfig
from .conn import AgentConn, Frames
from .engine import (
    LABEL,
    LABEL_HOST,
    LABEL_INSTANCE,
    LABEL_PROCESS,
    PING_TIMEOUT,
    Engine,
    EngineDown,
    Shape,
    describe,
    is_engine_down,
)
from .grading import ReportError, parse_report, score
from .job import ExecutorError, Job, JobError, OutputChunk, Result, Status, TestOutcome
from .languages import LanguageSpec, load_languages
from .plan import Plan, make_plan
from .pool import Box, Pool

log = logging.getLogger("opencode_live.executor")

AGENT_SOURCE = Path(__file__).with_name("agent.py").read_text(encoding="utf-8")
#: After a kill is asked for, how long the agent has to report before the container goes.
KILL_GRACE = 2.0
PING_INTERVAL = 2.0
CONNECT_TIMEOUT = 15.0
HELLO_TIMEOUT = 20.0
MAX_BACKOFF = 10.0
SWEEP_INTERVAL = 60.0
#: An untracked container of ours younger than this may still be being created.
SWEEP_GRACE = 120.0
MAX_STDIN_TOTAL = 4 * 1024 * 1024
STDERR_TAIL = 2048

OnOutput = Callable[[OutputChunk], None]


def fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def fmt_seconds(s: float) -> str:
    return f"{s:g} s"


def signal_name(n: int) -> str:
    try:
        return signals.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _diff(before: Any, after: Any) -> int | None:
    if isinstance(before, int) and isinstance(after, int):
        return after - before
    return None


class Run:
    """A handle to one started run. All methods are for the event loop's thread."""

    def __init__(
        self,
        executor: Executor,
        box: Box,
        plan: Plan,
        on_output: OnOutput,
        *,
        stdin: str,
        close_stdin: bool,
    ) -> None:
        self.id = secrets.token_hex(6)
        self._ex = executor
        self._loop = executor._loop_or_fail()
        self._box = box
        self._plan = plan
        self._on_output = on_output
        self._close_stdin = close_stdin
        self._stdin = stdin
        self._done: asyncio.Future[Result] = self._loop.create_future()
        self._kill_reason: Status | None = None
        self._out_bytes = 0
        self._truncated = False
        self._stderr_tail = b""
        self._stdin_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._force: asyncio.TimerHandle | None = None
        self._before: CgroupStats | None = None
        self._t0 = self._loop.time()
        self._callback_failed = False
        self.owner = box.owner or ""
        self.language = plan.spec.name

    # -- the interface ----------------------------------------------------------------------

    def send_input(self, data: bytes) -> None:
        """Sends ``data`` to the program's stdin (dropped past 4 MiB per run, or once over)."""
        if self._done.done() or not data:
            return
        if isinstance(data, str):
            data = data.encode()
        room = MAX_STDIN_TOTAL - self._stdin_bytes
        if room <= 0:
            return
        data = bytes(data[:room])
        self._stdin_bytes += len(data)
        self._conn.send(b"I", data)

    def close_input(self) -> None:
        if not self._done.done():
            self._conn.send(b"C")

    def stop(self) -> None:
        """Ends the run: every process of it is killed; the status is "killed"."""
        self._kill("killed")

    async def wait(self) -> Result:
        return await asyncio.shield(self._done)

    @property
    def done(self) -> bool:
        return self._done.done()

    # -- inside -----------------------------------------------------------------------------

    @property
    def _conn(self) -> AgentConn:
        assert self._box.conn is not None
        return self._box.conn

    def _begin(self) -> None:
        box, plan = self._box, self._plan
        box.run = self
        box.runs += 1
        if box.cgroup is not None:
            try:
                box.cgroup.reset_peak()
                self._before = box.cgroup.read()
            except OSError:
                self._before = None
        request = {
            "files": plan.files,
            "argv": plan.argv,
            "env": plan.env,
            "stdin": self._stdin,
            "close_stdin": self._close_stdin,
            "output_bytes": plan.limits.output_bytes,
            "chunk": self._ex.config.chunk_bytes,
            "report": plan.report,
        }
        self._conn.new_run(plan.limits.output_bytes)
        self._conn.send(b"R", json.dumps(request).encode("utf-8", "surrogatepass"))
        self._t0 = self._loop.time()
        self._timer = self._loop.call_later(plan.limits.wall_seconds, self._kill, "timeout")

    def _kill(self, reason: Status) -> None:
        if self._done.done() or self._kill_reason is not None:
            return
        self._kill_reason = reason
        if self._timer is not None:
            self._timer.cancel()
        self._conn.send(b"K")
        self._force = self._loop.call_later(KILL_GRACE, self._force_end)

    def _force_end(self) -> None:
        if not self._done.done():
            self._end(
                None,
                f"the container did not stop the program within {fmt_seconds(KILL_GRACE)}, "
                "so it was destroyed",
            )

    def _lost(self, reason: str) -> None:
        if not self._done.done():
            self._end(None, reason)

    def _frames(self, frames: Frames) -> None:
        if self._done.done():
            return
        stream: str | None = None
        pending = bytearray()
        for kind, payload in frames:
            if kind in (b"O", b"E"):
                this = "stdout" if kind == b"O" else "stderr"
                if this != stream and pending:
                    self._output(stream, bytes(pending))  # type: ignore[arg-type]
                    pending.clear()
                stream = this
                pending += payload
            elif kind == b"X":
                if pending:
                    self._output(stream, bytes(pending))  # type: ignore[arg-type]
                    pending.clear()
                try:
                    report = json.loads(payload)
                except ValueError:
                    report = None
                if not isinstance(report, dict):
                    self._end(None, "the container's agent sent an unreadable result")
                else:
                    self._end(report, None)
                return
        if pending:
            self._output(stream, bytes(pending))  # type: ignore[arg-type]

    def _emit(self, chunk: OutputChunk) -> None:
        try:
            self._on_output(chunk)
        except Exception:
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("on_output failed", extra={"run": self.id})

    def _output(self, stream: str, data: bytes) -> None:
        if self._truncated or self._done.done():
            return
        limit = self._plan.limits.output_bytes
        room = limit - self._out_bytes
        over = len(data) > room
        if over:
            data = data[: max(room, 0)]
        if data:
            self._out_bytes += len(data)
            if stream == "stderr":
                self._stderr_tail = (self._stderr_tail + data[-STDERR_TAIL:])[-STDERR_TAIL:]
            size = self._ex.config.chunk_bytes
            for i in range(0, len(data), size):
                self._emit(OutputChunk(stream, data[i : i + size]))  # type: ignore[arg-type]
        if over:
            self._truncated = True
            marker = f"\n[output truncated at {fmt_bytes(limit)}]\n".encode()
            self._emit(OutputChunk("stderr", marker))
            self._kill("output-limit")

    def _end(self, agent: dict[str, Any] | None, lost: str | None) -> None:
        if self._done.done():
            return
        for handle in (self._timer, self._force):
            if handle is not None:
                handle.cancel()
        elapsed_ms = (self._loop.time() - self._t0) * 1000
        box, plan, limits = self._box, self._plan, self._plan.limits
        a = agent or {}
        after: CgroupStats | None = None
        if box.cgroup is not None and self._before is not None:
            try:
                after = box.cgroup.read()
            except OSError:
                after = None
        host = after is not None and self._before is not None

        exit_code = _int(a.get("exit_code"))
        sig = _int(a.get("signal"))
        agent_wall = _num(a.get("wall_ms"))
        wall_ms = min(agent_wall, elapsed_ms) if agent_wall is not None else elapsed_ms
        cg_before = a.get("cgroup_before") if isinstance(a.get("cgroup_before"), dict) else {}
        cg_after = a.get("cgroup_after") if isinstance(a.get("cgroup_after"), dict) else {}
        cpu_ms: float | None = None
        oom = pids_hit = None
        peak = 0
        if host:
            assert after is not None and self._before is not None
            d = _diff(self._before.cpu_ns, after.cpu_ns)
            cpu_ms = d / 1e6 if d is not None else None
            oom = _diff(self._before.oom_kills, after.oom_kills)
            pids_hit = _diff(self._before.pids_max_hits, after.pids_max_hits)
            if (
                after.peak_bytes is not None
                and box.cgroup is not None
                and box.cgroup.peak_resettable
            ):
                peak = after.peak_bytes
        if cpu_ms is None:
            d = _diff(cg_before.get("cpu_ns"), cg_after.get("cpu_ns"))
            cpu_ms = d / 1e6 if d is not None else _num(a.get("cpu_ms"))
        if oom is None:
            oom = _diff(cg_before.get("oom_kill"), cg_after.get("oom_kill"))
        if pids_hit is None:
            pids_hit = _diff(cg_before.get("pids_max"), cg_after.get("pids_max"))
        if not peak:
            rss = _int(a.get("maxrss_kb"))
            peak = rss * 1024 if rss is not None and rss > 0 else 0
        oom_killed = bool(oom and oom > 0)
        pids_limited = bool(pids_hit and pids_hit > 0)

        tests: list[TestOutcome] | None = None
        points: float | None = None
        report_problem = ""
        if plan.graded:
            tests, points = [], 0.0
            text = a.get("report")
            if isinstance(text, str) and text.strip():
                try:
                    tests = parse_report(plan.spec.test.report, text)  # type: ignore[union-attr]
                    points = score(tests)
                except ReportError as exc:
                    report_problem = str(exc)
            else:
                problem = a.get("report_error")
                report_problem = "the test runner wrote no report" + (
                    f" ({problem})" if isinstance(problem, str) and problem else ""
                )

        agent_error = a.get("error") if isinstance(a.get("error"), str) else None
        status: Status
        reason = self._kill_reason
        if reason == "timeout":
            status = "timeout"
            message = (
                f"stopped: still running after the time limit of {fmt_seconds(limits.wall_seconds)}"
            )
        elif reason == "output-limit":
            status = "output-limit"
            message = (
                f"stopped: printed more than the output limit of {fmt_bytes(limits.output_bytes)}; "
                "the rest was dropped"
            )
        elif reason == "killed":
            status = "killed"
            message = "stopped on request"
        elif oom_killed:
            status = "memory"
            message = f"stopped: ran out of memory (limit {fmt_bytes(limits.memory_bytes)})"
        elif lost is not None:
            status = "error"
            message = f"the run failed: {lost}"
        elif agent_error:
            status = "error"
            message = agent_error[:300]
        elif plan.graded and tests:
            status = "ok"
            passed = sum(1 for t in tests if t.passed)
            message = f"{passed} of {len(tests)} tests passed"
        elif plan.graded:
            status = "error"
            message = report_problem or "no tests were found"
            if exit_code not in (None, 0):
                message += f"; the test runner exited with code {exit_code}"
        elif exit_code == 0:
            status = "ok"
            message = "exited normally"
        else:
            status = "error"
            if sig is not None:
                message = f"killed by signal {sig} ({signal_name(sig)})"
            elif exit_code is not None:
                message = f"exited with code {exit_code}"
            else:
                message = "ended without an exit status"
            if pids_limited:
                message += f"; it hit the process limit ({limits.pids})"
            if b"No space left on device" in self._stderr_tail:
                message += (
                    f"; out of disk space (the workspace holds {fmt_bytes(box.shape.work_bytes)})"
                )
        if lost is not None and status != "error" and reason is None:
            message += f" ({lost})"

        result = Result(
            status=status,
            exit_code=exit_code,
            signal=sig,
            wall_ms=round(wall_ms, 3),
            cpu_ms=round(cpu_ms or 0.0, 3),
            peak_memory_bytes=int(peak),
            output_truncated=self._truncated,
            message=message,
            tests=tests,
            score=points,
        )
        breach = status in ("timeout", "memory", "output-limit") or pids_limited
        clean = a.get("clean") is True
        self._ex._finished(self, reuse=clean and not breach and lost is None)
        log.info(
            "run ended",
            extra={
                "run": self.id,
                "owner": self.owner,
                "language": self.language,
                "container": box.short,
                "status": status,
                "wall_ms": round(wall_ms, 1),
                "cpu_ms": round(cpu_ms or 0.0, 1),
                "peak_memory_bytes": int(peak),
                "output_bytes": self._out_bytes,
            },
        )
        self._done.set_result(result)


class Executor:
    """Runs jobs in sandbox containers; see the module's docstring."""

    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config or ExecutorConfig()
        self.languages: dict[str, LanguageSpec] = load_languages(self.config.languages_dir)
        self._engine = Engine(self.config.docker_host, cpuset_cpus=self.config.cpuset_cpus)
        self._available = False
        self._reason = "the executor is not started"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: Pool | None = None
        self._runs: dict[str, Run] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._instance = secrets.token_hex(4)
        self._tag = this_process_tag()
        self._hostname = socket.gethostname()
        self._names = itertools.count(1)
        #: Containers whose removal failed (engine down): removed when it answers again.
        self._orphans: set[str] = set()
        self._closed = False
        self._supervisor: asyncio.Task[None] | None = None
        self._default_shape = Shape.of(self.config.image, self.config.limits)

    # -- the interface ----------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self._available

    @property
    def reason(self) -> str:
        return "" if self._available else self._reason

    async def start(self) -> None:
        """Connects; never raises. If the engine is missing, ``available`` is False, ``reason``
        says why, and a background task keeps trying (back-off up to 10 s)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._pool = Pool(
            loop=self._loop,
            default_shape=self._default_shape,
            warm=self.config.warm,
            max_containers=self.config.max_containers,
            create=self._create_box,
            destroy=self._destroy,
        )
        self._pool.start()
        await self._try_connect()
        self._supervisor = self._loop.create_task(self._supervise(), name="executor-supervisor")

    async def close(self) -> None:
        """Stops every run and removes every container this executor made."""
        if self._closed or self._loop is None:
            self._closed = True
            return
        self._closed = True
        self._available = False
        self._reason = "the executor is closed"
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        assert self._pool is not None
        await self._pool.stop()
        runs = list(self._runs.values())
        for run in runs:
            run.stop()
        if runs:
            await asyncio.wait([r._done for r in runs], timeout=KILL_GRACE + 1)
        for run in runs:
            run._lost("the executor closed")
        for box in self._pool.all_boxes():
            self._pool.drop(box)
        deadline = self._loop.time() + 60
        while self._tasks and self._loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.1, deadline - self._loop.time()))
        try:  # anything of ours the engine still has (orphans of an engine outage, ...)
            await asyncio.wait_for(self._sweep(everything_of_ours=True), 30)
        except Exception as exc:
            log.info("final sweep failed", extra={"error": str(exc)})
        self._engine.shutdown()
        log.info("executor closed")

    async def start_run(self, job: Job, *, owner: str, on_output: OnOutput) -> Run:
        """Starts ``job`` for ``owner``. Raises ``JobError`` (the job is wrong) or
        ``ExecutorError`` (runs cannot be done now: engine down, pool full); never waits
        for a container longer than its creation takes."""
        return await self._start(job, owner, on_output, close_stdin=False)

    async def run(self, job: Job, *, owner: str) -> tuple[Result, list[OutputChunk]]:
        """Runs ``job`` to the end (stdin: ``job.stdin``, then end of file)."""
        chunks: list[OutputChunk] = []
        run = await self._start(job, owner, chunks.append, close_stdin=True)
        result = await run.wait()
        return result, chunks

    # -- extras for the server, tests and benchmarks -----------------------------------------

    def pool_counts(self) -> dict[str, int]:
        counts = self._pool.counts() if self._pool else {}
        return {**counts, "runs": len(self._runs)}

    async def wait_warm(self, timeout: float = 30.0) -> bool:
        """Waits until the warm containers are all started; False on timeout."""
        loop = self._loop_or_fail()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if (
                self._available
                and self._pool is not None
                and self._pool.warm_count(self._default_shape) >= self.config.warm
            ):
                return True
            await asyncio.sleep(0.05)
        return False

    # -- runs -------------------------------------------------------------------------------

    def _loop_or_fail(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise ExecutorError("the executor is not started")
        return self._loop

    async def _start(self, job: Job, owner: str, on_output: OnOutput, *, close_stdin: bool) -> Run:
        self._loop_or_fail()
        if self._closed:
            raise ExecutorError("the executor is closed")
        if not isinstance(owner, str) or not owner:
            raise JobError("a run needs an owner (the user's id)")
        plan = make_plan(
            job,
            languages=self.languages,
            default_image=self.config.image,
            default_limits=self.config.limits,
            max_cpus=self._engine.ncpu,
        )
        assert self._pool is not None
        for _ in range(3):
            if not self._available:
                raise ExecutorError(f"runs are unavailable: {self._reason}")
            box = await self._pool.acquire(owner, plan.shape)
            if box.state != "busy" or box.conn is None or box.conn.closed:
                self._pool.drop(box)
                continue
            run = Run(self, box, plan, on_output, stdin=job.stdin, close_stdin=close_stdin)
            self._runs[run.id] = run
            run._begin()
            return run
        raise ExecutorError("run containers keep failing; see the server log")

    def _finished(self, run: Run, *, reuse: bool) -> None:
        self._runs.pop(run.id, None)
        box = run._box
        box.run = None
        assert self._pool is not None
        if (
            reuse
            and box.state == "busy"
            and box.runs < self.config.runs_per_container
            and self._available
            and not self._closed
        ):
            self._pool.keep(box)
        else:
            self._pool.drop(box)

    # -- containers -------------------------------------------------------------------------

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create_box(self, shape: Shape) -> Box:
        loop = self._loop_or_fail()
        task = loop.create_task(self._create_box_now(shape))
        self._track(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:

            def discard(t: asyncio.Task[Box]) -> None:
                if not t.cancelled() and t.exception() is None:
                    self._destroy(t.result())

            task.add_done_callback(discard)
            raise

    async def _create_box_now(self, shape: Shape) -> Box:
        loop = self._loop_or_fail()
        name = f"ocl-run-{self._instance}-{next(self._names)}"
        labels = {
            LABEL: "1",
            LABEL_INSTANCE: self._instance,
            LABEL_HOST: self._hostname,
            LABEL_PROCESS: self._tag,
        }
        t0 = loop.time()
        try:
            cid, cgroup = await self._engine.call(self._engine.create, shape, name, labels)
        except Exception as exc:
            raise self._engine_error(exc, "could not start a run container") from exc
        box = Box(cid, name, shape, cgroup, loop)
        try:
            sock, keep = await self._engine.call(self._engine.start_agent, cid, AGENT_SOURCE)
            box.conn = AgentConn(sock, keep, loop, box.on_frames, box.on_closed, name)
            box.conn.start()
            box.conn.send(b"P")
            hello = json.loads(await asyncio.wait_for(asyncio.shield(box.hello), HELLO_TIMEOUT))
        except BaseException as exc:
            self._destroy(box)
            if isinstance(exc, ExecutorError):
                raise
            if isinstance(exc, Exception):
                raise self._engine_error(
                    exc, "could not start the agent in a run container"
                ) from exc
            raise
        log.info(
            "container ready",
            extra={
                "container": box.short,
                "ms": round((loop.time() - t0) * 1000),
                "cgroup": "host" if cgroup is not None else "agent",
                "agent_pid": hello.get("pid") if isinstance(hello, dict) else None,
            },
        )
        return box

    def _destroy(self, box: Box) -> None:
        box.state = "gone"
        if box.conn is not None:
            box.conn.close()
        loop = self._loop_or_fail()
        self._track(loop.create_task(self._remove(box.id)))

    async def _remove(self, cid: str) -> None:
        try:
            await self._engine.call(self._engine.remove, cid)
        except Exception as exc:
            # the engine is down or busy: retried when it is back, and at close()
            self._orphans.add(cid)
            log.info("container not removed yet", extra={"container": cid[:12], "error": str(exc)})
        else:
            self._orphans.discard(cid)

    def _engine_error(self, exc: BaseException, what: str) -> ExecutorError:
        if is_engine_down(exc):
            reason = str(exc) if isinstance(exc, EngineDown) else describe(exc, self._engine.where)
            self._set_down(reason)
            return ExecutorError(f"runs are unavailable: {reason}")
        return ExecutorError(f"{what}: {describe(exc)}")

    # -- the engine's health ----------------------------------------------------------------

    def _set_down(self, reason: str) -> None:
        was = self._available
        self._available = False
        self._reason = reason
        if self._pool is not None:
            self._pool.disable()
        if was:
            log.warning("runs unavailable", extra={"reason": reason})

    async def _try_connect(self) -> bool:
        engine = self._engine
        try:
            await asyncio.wait_for(engine.call(engine.connect), CONNECT_TIMEOUT)
            if not await engine.call(engine.image_present, self.config.image):
                self._set_down(
                    f"the run image {self.config.image} is not on the Docker Engine at "
                    f"{engine.where} (build it with executor/images/build.sh)"
                )
                return False
            await self._sweep()
        except Exception as exc:
            if isinstance(exc, EngineDown):
                reason = str(exc)
            elif isinstance(exc, TimeoutError):
                reason = f"the Docker Engine at {engine.where} does not answer (timed out)"
            else:
                reason = describe(exc, engine.where)
            self._set_down(reason)
            return False
        if self._closed:
            return False
        self._default_shape = Shape.of(self.config.image, self.config.limits, engine.ncpu)
        assert self._pool is not None
        self._pool.default_shape = self._default_shape
        self._available = True
        self._reason = ""
        self._pool.enable()
        log.info("runs available", extra={"engine": engine.where, "image": self.config.image})
        return True

    async def _supervise(self) -> None:
        loop = self._loop_or_fail()
        backoff = 0.5
        failures = 0
        last_sweep = loop.time()
        while True:
            try:
                if not self._available:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    if await self._try_connect():
                        backoff, failures = 0.5, 0
                    continue
                await asyncio.sleep(PING_INTERVAL)
                try:
                    await asyncio.wait_for(self._engine.call(self._engine.ping), PING_TIMEOUT + 1)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    reason = str(exc) if isinstance(exc, EngineDown) else ""
                    definite = "does not exist" in reason or "refuses" in reason
                    if definite or failures >= 2:
                        self._set_down(
                            reason or f"the Docker Engine at {self._engine.where} does not answer"
                        )
                    continue
                assert self._pool is not None
                self._pool.expire(self.config.idle_seconds)
                if loop.time() - last_sweep > SWEEP_INTERVAL:
                    last_sweep = loop.time()
                    await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("executor supervisor")

    async def _sweep(self, *, everything_of_ours: bool = False) -> None:
        """Removes leftovers: containers of dead executors on this host, stopped ones of other
        hosts, and ours that nothing tracks any more (e.g. after an engine restart)."""
        engine = self._engine
        items = await engine.call(engine.list_labeled)
        now = time.time()
        tracked = set(self._pool.boxes) if self._pool else set()
        doomed = []
        for item in items:
            labels = item.get("Labels") or {}
            cid = item.get("Id", "")
            running = item.get("State") == "running"
            if labels.get(LABEL_INSTANCE) == self._instance:
                untracked = cid not in tracked
                old = now - item.get("Created", now) > SWEEP_GRACE
                if (
                    everything_of_ours
                    or cid in self._orphans
                    or (untracked and (not running or old))
                ):
                    doomed.append(cid)
            elif labels.get(LABEL_HOST) == self._hostname:
                if not process_alive(labels.get(LABEL_PROCESS, "")):
                    doomed.append(cid)
            elif not running and now - item.get("Created", now) > SWEEP_GRACE:
                doomed.append(cid)  # another host's: only once it is stopped and not new
        if doomed:
            log.info("removing leftover containers", extra={"count": len(doomed)})
            results = await asyncio.gather(
                *(engine.call(engine.remove, cid) for cid in doomed), return_exceptions=True
            )
            for cid, res in zip(doomed, results, strict=True):
                if not isinstance(res, Exception):
                    self._orphans.discard(cid)
                else:
                    log.info(
                        "leftover not removed", extra={"container": cid[:12], "error": str(res)}
                    )
