"""A run worker: takes jobs from the Redis stream and runs them in its local container pool.

``opencode-live worker`` runs one ``Worker``. It reads the jobs stream with a
consumer group (``XREADGROUP``: each job goes to one worker), at most as many
at a time as it has run slots, runs each with a plain ``Executor`` (which
enforces the time, memory and output limits, exactly as a server with a local
engine does), writes ``started``, the output chunks and ``exit`` to the run's
events stream, applies ``input``/``eof``/``stop`` from the run's control
stream, then acknowledges (and deletes) the job.

**A worker that dies.** While it runs a job a worker renews, every second, a
lease key (``PX`` 5 s) and the job's idle time in the group's pending list
(``XCLAIM ... JUSTID`` to itself). So a job whose worker died is noticed twice:

- the server waiting for the run sees the lease gone without an ``exit`` and
  ends the run at once as ``error`` with the message "worker lost: ..." (the
  bound: lease time + one check, ~6 s) — it does not depend on another worker;
- any other worker's ``XAUTOCLAIM`` (idle > 5 s) takes the pending job over.
  The job's ``state`` key (``SET NX``) says whether it ever started. If it did,
  the job is **reported failed, never re-run**: its output was already streamed
  to a room and its program may have consumed input, so a silent second run would
  show people something they did not ask for. If it never started (the worker
  died between taking and starting it), it is **retried once** by the worker
  that reclaimed it: nobody saw anything yet, so a retry is invisible. A job
  delivered a third time is failed ("lost twice before it started").

The server also bounds the wait for a worker: a job nobody starts within
``run_queue_wait_seconds`` is cancelled (``SET state cancelled NX``: a worker
that takes it later drops it) and the run fails with a message saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import socket
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from .config import ExecutorConfig
from .executor import Executor, Run
from .job import ExecutorError, JobError, OutputChunk, Result
from .queue import (
    GROUP,
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    RECLAIMED,
    RUN_TTL,
    WORKER_JOBS,
    Keys,
    QueuedJob,
    now_ms,
    result_to_json,
)

log = logging.getLogger("opencode_live.worker")

#: Reads of the jobs and control streams block at most this long (ms), to notice a stop.
BLOCK_MS = 1000
#: Deliveries of one job that may reach a worker before it is failed (first try + one retry).
MAX_TRIES = 2


#: Docker's cpuset syntax: CPU numbers and ranges, comma-separated ("0", "0-1", "0,2-3").
_CPUSET = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


def check_cpuset(text: str) -> str:
    """``text`` if it is a cpuset ("0", "0-1", "0,2"), else ValueError: caught at start-up,
    not when the first container is made (Docker would refuse each one)."""
    value = text.strip()
    if not _CPUSET.fullmatch(value):
        raise ValueError(f"not a CPU set (like 0, 0-1 or 0,2): {text!r}")
    for part in value.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise ValueError(f"not a CPU set (a range goes up): {text!r}")
    return value


async def ensure_group(r: aioredis.Redis, keys: Keys) -> None:
    """The consumer group, from the stream's start (jobs queued before any worker count)."""
    try:
        await r.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class _Pump:
    """Output chunks from the executor's callback to the run's events stream, in order."""

    def __init__(self, r: aioredis.Redis, key: str) -> None:
        self._r = r
        self._key = key
        self._pending: list[OutputChunk] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def push(self, chunk: OutputChunk) -> None:
        self._pending.append(chunk)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    pipe = self._r.pipeline(transaction=False)
                    for c in batch:
                        pipe.xadd(self._key, {"k": "o", "s": c.stream, "d": c.data})
                    await pipe.execute()
                except RedisError as exc:
                    log.warning("output not sent", extra={"key": self._key, "error": str(exc)})
            if self._closing and not self._pending:
                return

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task


class Worker:
    """Takes run jobs from Redis and runs them in a local ``Executor``; see the module doc."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        config: ExecutorConfig,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        lease_seconds: float = LEASE_SECONDS,
        cpuset_cpus: str | None = None,
    ) -> None:
        """``concurrency``: jobs in hand at once (default ``config.max_containers``; fewer
        lets each user keep a container while few run at once). ``cpuset_cpus``: pin this
        worker's containers to these host CPUs ("0", "0-1", "0,2"), so that workers sharing
        one host do not share CPUs (``bench/runs.py --workers``); default: any CPU."""
        if concurrency is not None and concurrency < 1:
            raise ValueError("a worker's concurrency must be at least 1")
        self.keys = Keys(prefix)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        if cpuset_cpus is not None:
            config = dataclasses.replace(config, cpuset_cpus=check_cpuset(cpuset_cpus))
        self.executor = Executor(config)
        self.concurrency = concurrency or config.max_containers
        self.lease_ms = int(lease_seconds * 1000)
        self._redis_url = redis_url
        self._r: aioredis.Redis | None = None
        #: Jobs in hand: run id -> the job's entry id on the stream.
        self._jobs: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slot = asyncio.Event()
        self._stopping = asyncio.Event()
        self._closing = False

    @property
    def in_hand(self) -> int:
        """Jobs taken and not finished: their tasks, counted from the moment they are
        taken (``_jobs`` only holds them once started, after a few Redis round trips; the
        loop that takes jobs must not read more meanwhile, or it takes more than its
        ``concurrency`` and the executor refuses the extra ones as busy)."""
        return len(self._tasks)

    @property
    def redis(self) -> aioredis.Redis:
        assert self._r is not None, "start() first"
        return self._r

    async def start(self) -> None:
        self._r = aioredis.from_url(self._redis_url)
        await self._r.ping()
        await ensure_group(self._r, self.keys)
        await self.executor.start()
        log.info(
            "worker started",
            extra={
                "worker": self.name,
                "prefix": self.keys.prefix,
                "concurrency": self.concurrency,
                "runs": "ok" if self.executor.available else self.executor.reason,
            },
        )

    def stop(self) -> None:
        """Stop taking jobs (``serve`` ends once the jobs in hand are done)."""
        self._stopping.set()

    async def serve(self) -> None:
        """Take and run jobs until ``stop()``; then finish the jobs in hand and close."""
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat())
        try:
            await self._take_jobs()
        finally:
            await self._drain()
            self._closing = True
            heartbeat.cancel()  # bounded wait: redis-py may swallow a cancellation
            await asyncio.wait({heartbeat}, timeout=HEARTBEAT_SECONDS + 10)
            await self.close()

    async def close(self) -> None:
        await self.executor.close()
        if self._r is not None:
            with contextlib.suppress(RedisError):
                await self._r.zrem(self.keys.workers, self.name)
            await self._r.aclose()
            self._r = None
        log.info("worker stopped", extra={"worker": self.name})

    async def _drain(self) -> None:
        if self._tasks:
            # runs in hand end by themselves (their wall time bounds them)
            await asyncio.wait(
                set(self._tasks), timeout=self.executor.config.limits.wall_seconds + 10
            )

    # -- taking jobs -------------------------------------------------------------------------

    async def _take_jobs(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            free = self.concurrency - self.in_hand
            if free <= 0 or not self.executor.available:
                self._slot.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot.wait(), 0.5)
                continue
            try:
                answer = await self.redis.xreadgroup(
                    GROUP, self.name, {self.keys.jobs: ">"}, count=free, block=BLOCK_MS
                )
                backoff = 0.5
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted: make it again
                    with contextlib.suppress(RedisError, OSError):
                        await ensure_group(self.redis, self.keys)
                        continue
                log.warning("cannot read jobs", extra={"worker": self.name, "error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except (RedisError, OSError) as exc:
                log.warning("cannot read jobs", extra={"worker": self.name, "error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    self._spawn(self._job(_text(entry_id), fields, reclaimed=False))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A job's slot is free once its task is gone from ``_tasks`` (``in_hand``)."""
        self._tasks.discard(task)
        self._slot.set()

    async def _heartbeat(self) -> None:
        """Liveness: the workers set, the leases and the idle time of the jobs in hand; and
        the jobs of dead workers taken over (``XAUTOCLAIM``)."""
        r = self.redis
        while not self._closing:
            try:
                pipe = r.pipeline(transaction=False)
                pipe.zadd(self.keys.workers, {self.name: now_ms()})
                pipe.zremrangebyscore(self.keys.workers, 0, now_ms() - RUN_TTL * 1000)
                for run, entry_id in list(self._jobs.items()):
                    pipe.set(self.keys.lease(run), self.name, px=self.lease_ms)
                    pipe.xclaim(self.keys.jobs, GROUP, self.name, 0, [entry_id], justid=True)
                await pipe.execute()
                free = self.concurrency - self.in_hand
                if free > 0 and not self._stopping.is_set() and self.executor.available:
                    await self._reclaim(free)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat failed", extra={"worker": self.name, "error": str(exc)})
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _reclaim(self, count: int) -> None:
        answer = await self.redis.xautoclaim(
            self.keys.jobs, GROUP, self.name, self.lease_ms, start_id="0-0", count=count
        )
        entries = answer[1] if isinstance(answer, list | tuple) and len(answer) > 1 else []
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream meanwhile (a cancelled job)
                continue
            self._spawn(self._job(_text(entry_id), fields, reclaimed=True))

    # -- one job -----------------------------------------------------------------------------

    async def _settle(self, entry_id: str) -> None:
        """The job is done with: acknowledged and removed (the stream holds waiting jobs)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.keys.jobs, GROUP, entry_id)
        pipe.xdel(self.keys.jobs, entry_id)
        await pipe.execute()

    async def _event(self, run: str, fields: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.events(run), fields)
        pipe.expire(self.keys.events(run), RUN_TTL)
        await pipe.execute()

    async def _job(self, entry_id: str, fields: dict[bytes, bytes], *, reclaimed: bool) -> None:
        try:
            await self._job_now(entry_id, fields, reclaimed=reclaimed)
        except Exception:
            log.exception("job failed", extra={"worker": self.name, "entry": entry_id})
        finally:
            self._slot.set()

    async def _job_now(self, entry_id: str, fields: dict[bytes, bytes], *, reclaimed: bool) -> None:
        r, keys = self.redis, self.keys
        try:
            queued = QueuedJob.decode(fields[b"job"])
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("unreadable job dropped", extra={"entry": entry_id, "error": str(exc)})
            await self._settle(entry_id)
            return
        run = queued.run
        pipe = r.pipeline(transaction=False)
        pipe.incr(keys.tries(run))
        pipe.expire(keys.tries(run), RUN_TTL)
        pipe.set(keys.state(run), f"started:{self.name}", nx=True, ex=RUN_TTL)
        tries, _, won = await pipe.execute()
        if not won:
            state = _text(await r.get(keys.state(run)) or b"")
            if state.startswith("started:") and reclaimed:
                if await r.exists(keys.lease(run)):
                    return  # its worker is alive (a slow heartbeat): it will settle the job
                worker = state.removeprefix("started:")
                await self._event(
                    run, {"k": "l", "m": f"the worker {worker} running it stopped answering"}
                )
                RECLAIMED.labels(outcome="lost").inc()
                WORKER_JOBS.labels(outcome="lost").inc()
                log.warning("run lost with its worker", extra={"run": run, "worker": worker})
            elif reclaimed:
                RECLAIMED.labels(outcome="dropped").inc()
            await self._settle(entry_id)  # cancelled by the server, or a duplicate
            return
        if reclaimed:
            RECLAIMED.labels(outcome="retried").inc()
            log.info("job retried: its worker died before starting it", extra={"run": run})
        if tries > MAX_TRIES:
            await self._event(
                run,
                {
                    "k": "r",
                    "e": "executor",
                    "m": "the run's workers were lost twice before it started",
                },
            )
            WORKER_JOBS.labels(outcome="lost").inc()
            await self._settle(entry_id)
            return
        self._jobs[run] = entry_id
        try:
            await self._execute(run, queued)
        finally:
            self._jobs.pop(run, None)
            pipe = r.pipeline(transaction=False)
            pipe.xack(keys.jobs, GROUP, entry_id)
            pipe.xdel(keys.jobs, entry_id)
            pipe.delete(keys.lease(run))
            await pipe.execute()

    async def _execute(self, run: str, queued: QueuedJob) -> None:
        keys = self.keys
        await self.redis.set(keys.lease(run), self.name, px=self.lease_ms)
        pump = _Pump(self.redis, keys.events(run))
        try:
            handle = await self.executor.start_run(
                queued.job, owner=queued.owner, on_output=pump.push
            )
        except (JobError, ExecutorError) as exc:
            kind = "job" if isinstance(exc, JobError) else "executor"
            await self._event(run, {"k": "r", "e": kind, "m": str(exc)})
            WORKER_JOBS.labels(outcome="refused").inc()
            return
        await self._event(run, {"k": "s", "w": self.name})
        pump.start()
        if queued.close_stdin:
            handle.close_input()
        control = asyncio.get_running_loop().create_task(self._control(run, handle))
        log.info(
            "job started",
            extra={
                "run": run,
                "worker": self.name,
                "queued_ms": max(0, now_ms() - queued.enqueued_ms),
            },
        )
        try:
            result: Result = await handle.wait()
        finally:
            control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await control
            await pump.close()
        await self._event(run, {"k": "x", "r": result_to_json(result)})
        WORKER_JOBS.labels(outcome=result.status).inc()
        log.info("job finished", extra={"run": run, "worker": self.name, "status": result.status})

    async def _control(self, run: str, handle: Run) -> None:
        """Input, end of input and stop for a running job, from its control stream."""
        key = self.keys.control(run)
        last = "0"
        while not handle.done:
            try:
                answer = await self.redis.xread({key: last}, block=BLOCK_MS, count=100)
            except (RedisError, OSError):
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    kind = fields.get(b"k")
                    if kind == b"i":
                        handle.send_input(fields.get(b"d", b""))
                    elif kind == b"e":
                        handle.close_input()
                    elif kind == b"s":
                        handle.stop()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
