"""The server's executor when runs go to workers: same surface as ``Executor``, no Docker.

``RemoteExecutor.start_run`` checks the job here (a ``JobError`` comes at once,
as with a local engine), puts it on the Redis jobs stream and waits until a
worker says ``started`` (or refuses it); the returned ``RemoteRun`` reads the
run's events stream (output chunks, then ``exit``) and writes input and stop
requests to its control stream. See ``worker.py`` for the worker's side and for
what happens when a worker dies.

Nothing can hang: a job no worker starts within ``queue_wait`` seconds is
cancelled and ``start_run`` raises ``ExecutorError``; a started run whose
worker's lease lapses without an ``exit`` ends as ``error`` "worker lost: ...";
a run that sends nothing past its wall time plus ``RESULT_GRACE`` ends the same
way. ``run()`` raises ``ExecutorError`` for a lost run (nothing was graded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .config import ExecutorConfig
from .job import ExecutorError, Job, JobError, Limits, OutputChunk, Result
from .languages import LanguageSpec, load_languages
from .plan import make_plan
from .queue import (
    LOST,
    QUEUE_DEPTH,
    Keys,
    QueuedJob,
    lost_result,
    now_ms,
    result_from_json,
)
from .worker import BLOCK_MS, ensure_group

log = logging.getLogger("opencode_live.executor")

OnOutput = Callable[[OutputChunk], None]
PING_INTERVAL = 2.0
#: A run that has sent no ``exit`` this long after its wall time is over is ended as lost.
RESULT_GRACE = 30.0
#: A worker seen within this long counts as connected (for messages and readiness).
WORKER_SEEN_SECONDS = 10.0


class RemoteRun:
    """A run on a worker: ``send_input``, ``close_input``, ``stop``, ``wait`` as ``Run``."""

    def __init__(
        self, ex: RemoteExecutor, run_id: str, queued: QueuedJob, on_output: OnOutput
    ) -> None:
        loop = asyncio.get_running_loop()
        self.id = run_id
        self.owner = queued.owner
        self.language = queued.job.language
        self.worker = ""
        #: True when the run ended because its worker went away.
        self.lost = False
        self._ex = ex
        self._queued = queued
        self._on_output = on_output
        self._started: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[Result] = loop.create_future()
        self._control: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._callback_failed = False
        self._t0 = loop.time()

    # -- the interface ----------------------------------------------------------------------

    def send_input(self, data: bytes) -> None:
        if not self._done.done() and data:
            self._send({"k": "i", "d": data.encode() if isinstance(data, str) else bytes(data)})

    def close_input(self) -> None:
        if not self._done.done():
            self._send({"k": "e"})

    def stop(self) -> None:
        """Asks the worker to stop the run (status "killed"); the worker enforces it."""
        if not self._done.done():
            self._send({"k": "s"})

    async def wait(self) -> Result:
        return await asyncio.shield(self._done)

    @property
    def done(self) -> bool:
        return self._done.done()

    # -- inside -----------------------------------------------------------------------------

    def _send(self, fields: dict[str, Any]) -> None:
        self._control.put_nowait(fields)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    async def _send_loop(self) -> None:
        key = self._ex.keys.control(self.id)
        while not self._done.done():
            fields = await self._control.get()
            for attempt in range(5):
                try:
                    pipe = self._ex.redis.pipeline(transaction=False)
                    pipe.xadd(key, fields)
                    pipe.expire(key, 3600)
                    await pipe.execute()
                    break
                except RedisError as exc:
                    log.warning("run control not sent", extra={"run": self.id, "error": str(exc)})
                    await asyncio.sleep(0.2 * (attempt + 1))

    def _emit(self, chunk: OutputChunk) -> None:
        try:
            self._on_output(chunk)
        except Exception:
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("on_output failed", extra={"run": self.id})

    def _end(self, result: Result, *, lost: bool = False) -> None:
        if self._done.done():
            return
        self.lost = lost
        self._done.set_result(result)
        if not self._started.done():
            self._started.set_exception(ExecutorError(result.message))
            self._started.exception()  # retrieved: start_run may have stopped waiting

    def _lose(self, why: str, reason: str) -> None:
        if not self._done.done():
            LOST.labels(reason=reason).inc()
            log.warning("run lost", extra={"run": self.id, "worker": self.worker, "why": why})
            self._end(lost_result(why, (self._loop_time() - self._t0) * 1000), lost=True)

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def _event(self, fields: dict[bytes, bytes]) -> None:
        kind = fields.get(b"k")
        if kind == b"o":
            stream = "stderr" if fields.get(b"s") == b"stderr" else "stdout"
            self._emit(OutputChunk(stream, fields.get(b"d", b"")))
        elif kind == b"s":
            self.worker = fields.get(b"w", b"").decode()
            self._t0 = self._loop_time()
            if not self._started.done():
                self._started.set_result(None)
        elif kind == b"x":
            try:
                result = result_from_json(fields[b"r"])
            except (KeyError, ValueError, TypeError) as exc:
                self._lose(f"the worker sent an unreadable result ({exc})", "unreadable")
                return
            self._end(result)
        elif kind == b"r":
            message = fields.get(b"m", b"").decode("utf-8", "replace")
            error = JobError(message) if fields.get(b"e") == b"job" else ExecutorError(message)
            if not self._started.done():
                self._started.set_exception(error)
            self._end(lost_result(message))
        elif kind == b"l":
            self._lose(fields.get(b"m", b"").decode("utf-8", "replace"), "reclaimed")

    async def _read(self) -> None:
        """Events until the end; checks the worker's lease while the run goes."""
        ex = self._ex
        key = ex.keys.events(self.id)
        last = "0"
        backoff = 0.2
        wall = self._queued.job.limits.wall_seconds
        deadline: float | None = None
        while not self._done.done():
            if self._started.done() and deadline is None:
                deadline = self._loop_time() + wall + RESULT_GRACE
            try:
                answer = await ex.redis.xread({key: last}, block=BLOCK_MS, count=512)
                backoff = 0.2
            except (RedisError, OSError) as exc:
                if deadline is not None and self._loop_time() > deadline:
                    self._lose(f"the run queue does not answer ({exc})", "redis")
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self._event(fields)
            if self._done.done() or not self._started.done() or answer:
                continue
            # nothing for a second from a started run: is its worker still there?
            try:
                alive = await ex.redis.exists(ex.keys.lease(self.id))
                if not alive:
                    # the exit is written before the lease goes: read once more
                    tail = await ex.redis.xread({key: last}, count=512)
                    for _stream, entries in tail or ():
                        for entry_id, fields in entries:
                            last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                            self._event(fields)
                    if not self._done.done():
                        self._lose(
                            f"the worker {self.worker or '?'} running it stopped answering; "
                            "the run did not finish",
                            "lease",
                        )
            except (RedisError, OSError):
                pass
            if deadline is not None and self._loop_time() > deadline and not self._done.done():
                self._lose("no result came from the worker after the time limit", "deadline")

    async def _finish(self) -> None:
        """The run's streams are not needed any more (state and lease expire by themselves)."""
        try:
            await self._ex.redis.delete(
                self._ex.keys.events(self.id), self._ex.keys.control(self.id)
            )
        except (RedisError, OSError):
            pass


class RemoteExecutor:
    """``Executor``'s surface over the Redis run queue (``--run-queue redis``)."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        config: ExecutorConfig | None = None,
        *,
        queue_wait: float = 30.0,
    ) -> None:
        self.config = config or ExecutorConfig()
        self.languages: dict[str, LanguageSpec] = load_languages(self.config.languages_dir)
        self.keys = Keys(prefix)
        self.queue_wait = queue_wait
        self._redis_url = redis_url
        self._r: aioredis.Redis | None = None
        self._available = False
        self._reason = "the executor is not started"
        self._runs: dict[str, RemoteRun] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self.workers_seen = 0

    @property
    def redis(self) -> aioredis.Redis:
        if self._r is None:
            raise ExecutorError("the executor is not started")
        return self._r

    @property
    def available(self) -> bool:
        return self._available

    @property
    def reason(self) -> str:
        return "" if self._available else self._reason

    async def start(self) -> None:
        """Connects; never raises (``available``/``reason`` say how it went; retried)."""
        if self._r is not None:
            return
        self._r = aioredis.from_url(self._redis_url, socket_connect_timeout=5)
        await self._check()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="remote-executor"
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._available = False
        self._reason = "the executor is closed"
        if self._supervisor is not None:
            # bounded: a cancellation that lands inside a redis-py call can be swallowed
            # there; the loop also ends by itself once it sees ``_closed``
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor}, timeout=PING_INTERVAL + 6)
        runs = list(self._runs.values())
        for run in runs:
            run.stop()
        if runs:
            await asyncio.wait([r._done for r in runs], timeout=5)
        for run in runs:
            run._lose("the server closed before the run ended", "closed")
            if run._reader is not None:
                run._reader.cancel()
            if run._sender is not None:
                run._sender.cancel()
        if self._r is not None:
            await self._r.aclose()

    async def start_run(self, job: Job, *, owner: str, on_output: OnOutput) -> RemoteRun:
        """Queues ``job`` and returns once a worker started it. ``JobError``: the job is
        wrong; ``ExecutorError``: no worker took it within ``queue_wait`` (or the queue
        is unreachable, or the worker could not start it)."""
        return await self._start(job, owner, on_output, close_stdin=False)

    async def run(self, job: Job, *, owner: str) -> tuple[Result, list[OutputChunk]]:
        """Runs ``job`` to the end (stdin: ``job.stdin``, then end of file)."""
        chunks: list[OutputChunk] = []
        run = await self._start(job, owner, chunks.append, close_stdin=True)
        result = await run.wait()
        if run.lost:
            raise ExecutorError(result.message)
        return result, chunks

    def pool_counts(self) -> dict[str, int]:
        return {"runs": len(self._runs), "workers": self.workers_seen}

    async def wait_warm(self, timeout: float = 30.0) -> bool:
        """Warm containers are the workers' business: True once the queue answers."""
        if not self._available and self._r is not None:
            await asyncio.wait_for(self._check(), timeout)
        return self._available

    # -- inside -----------------------------------------------------------------------------

    async def _start(
        self, job: Job, owner: str, on_output: OnOutput, *, close_stdin: bool
    ) -> RemoteRun:
        if self._r is None or self._closed:
            raise ExecutorError("the executor is " + ("closed" if self._closed else "not started"))
        if not isinstance(owner, str) or not owner:
            raise JobError("a run needs an owner (the user's id)")
        make_plan(  # the same JobErrors as a local engine, before anything is queued
            job,
            languages=self.languages,
            default_image=self.config.image,
            default_limits=self.config.limits,
        )
        if not self._available:
            raise ExecutorError(f"runs are unavailable: {self._reason}")
        if job.limits == Limits():  # the server's limits travel with the job
            job = dataclasses.replace(job, limits=self.config.limits)
        run_id = secrets.token_hex(8)
        queued = QueuedJob(run_id, job, owner, close_stdin, now_ms())
        run = RemoteRun(self, run_id, queued, on_output)
        try:
            entry = await self.redis.xadd(self.keys.jobs, {"job": queued.encode()})
        except (RedisError, OSError) as exc:
            raise ExecutorError(
                f"runs are unavailable: the run queue does not answer ({exc})"
            ) from exc
        self._runs[run_id] = run
        run._reader = asyncio.get_running_loop().create_task(self._follow(run))
        try:
            await asyncio.wait_for(asyncio.shield(run._started), self.queue_wait)
        except TimeoutError:
            await self._give_up(run, entry)
        except BaseException:
            run.stop()  # cancelled while waiting: the worker stops it as soon as it starts
            raise
        return run

    async def _give_up(self, run: RemoteRun, entry: bytes | str) -> None:
        """Nobody started the job in time: cancel it (unless a worker just did)."""
        keys = self.keys
        try:
            cancelled = await self.redis.set(keys.state(run.id), "cancelled", nx=True, ex=3600)
            if cancelled:
                await self.redis.xdel(keys.jobs, entry)
        except (RedisError, OSError):
            cancelled = True  # we cannot even tell: nothing will read the run's events
        if not cancelled:  # a worker won it just now: its "started" is on the way
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run._started), 10)
            if run._started.done() and run._started.exception() is None:
                return
        seen = self.workers_seen
        why = (
            f"no run worker started the run within {self.queue_wait:g} s "
            f"({seen} worker{'s' if seen != 1 else ''} connected to the queue"
            + ("; start one with `opencode-live worker`" if not seen else ", all busy")
            + ")"
        )
        LOST.labels(reason="no-worker").inc()
        run._end(lost_result(why), lost=True)
        self._runs.pop(run.id, None)
        raise ExecutorError(why)

    async def _follow(self, run: RemoteRun) -> None:
        try:
            await run._read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run reader failed", extra={"run": run.id})
            run._lose(f"the server stopped following the run ({exc})", "reader")
        finally:
            self._runs.pop(run.id, None)
            if run._sender is not None:
                run._sender.cancel()
            await run._finish()

    async def _check(self) -> None:
        try:
            r = self.redis
            await r.ping()  # bounded by the client's socket timeouts
            await ensure_group(r, self.keys)
            pipe = r.pipeline(transaction=False)
            pipe.xlen(self.keys.jobs)
            pipe.xpending(self.keys.jobs, "workers")
            pipe.zcount(self.keys.workers, now_ms() - int(WORKER_SEEN_SECONDS * 1000), "+inf")
            length, pending, seen = await pipe.execute()
            taken = int(pending.get("pending", 0)) if isinstance(pending, dict) else 0
            QUEUE_DEPTH.labels(state="waiting").set(max(0, int(length) - taken))
            QUEUE_DEPTH.labels(state="taken").set(taken)
            self.workers_seen = int(seen)
        except Exception as exc:
            if self._available:
                log.warning("run queue unavailable", extra={"error": str(exc)})
            self._available = False
            self._reason = f"the run queue (Redis) does not answer: {exc}"
            return
        if not self._available:
            log.info("run queue available", extra={"workers": self.workers_seen})
        self._available = True
        self._reason = ""

    async def _supervise(self) -> None:
        while not self._closed:
            await asyncio.sleep(PING_INTERVAL)
            if not self._closed:
                await self._check()
