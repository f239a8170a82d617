"""Run workers (issue 9 item 3): real worker processes on the machine's Docker Engine and
Redis, fed by the server's ``RemoteExecutor`` (the same object a ``--run-queue redis``
server uses), each test under its own Redis key prefix."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import redis.asyncio as aioredis

from executor import (
    ExecutorConfig,
    ExecutorError,
    Job,
    JobError,
    Limits,
    OutputChunk,
    RemoteExecutor,
)
from executor.queue import GROUP, Keys
from tests.conftest import REDIS_URL, RUN_IMAGE
from tests.runworkers import wait_for

MiB = 1024 * 1024
LIMITS = Limits(memory_bytes=256 * MiB, disk_bytes=32 * MiB, wall_seconds=10.0, pids=64)


async def remote(prefix: str, queue_wait: float = 20.0) -> RemoteExecutor:
    ex = RemoteExecutor(
        REDIS_URL, prefix, ExecutorConfig(image=RUN_IMAGE, limits=LIMITS), queue_wait=queue_wait
    )
    await ex.start()
    assert ex.available, ex.reason
    return ex


def text(chunks: list[OutputChunk], stream: str = "stdout") -> str:
    return b"".join(c.data for c in chunks if c.stream == stream).decode()


async def test_runs_stream_output_take_input_stop_and_grade_on_two_workers(
    redis_prefix,
    worker_factory,
):
    workers = [worker_factory(redis_prefix), worker_factory(redis_prefix)]
    ex = await remote(redis_prefix)
    try:

        async def both_seen() -> bool:
            await ex._check()
            return ex.workers_seen == 2

        await wait_for(both_seen, 10, "both workers seen")
        # output streamed live: the first line arrives while the program still waits for input
        chunks: list[OutputChunk] = []
        run = await ex.start_run(
            Job("python", {"main.py": "print('ready', flush=True)\nprint('hi', input())\n"}),
            owner="alice",
            on_output=chunks.append,
        )
        assert run.worker in {w.name for w in workers}
        await wait_for(lambda: text(chunks) == "ready\n", 10, "live output before input")
        assert not run.done
        run.send_input(b"Ada\n")
        result = await asyncio.wait_for(run.wait(), 15)
        assert (result.status, result.exit_code) == ("ok", 0), result
        assert text(chunks) == "ready\nhi Ada\n"

        # stop reaches the worker
        chunks = []
        run = await ex.start_run(
            Job("python", {"main.py": "import time\nprint('x', flush=True)\ntime.sleep(60)\n"}),
            owner="bob",
            on_output=chunks.append,
        )
        await wait_for(lambda: text(chunks) == "x\n", 10, "output before stop")
        run.stop()
        result = await asyncio.wait_for(run.wait(), 10)
        assert result.status == "killed", result

        # limits are the worker's to enforce: the wall time
        t0 = time.monotonic()
        short = Limits(memory_bytes=256 * MiB, disk_bytes=32 * MiB, wall_seconds=1.0, pids=64)
        result, _ = await ex.run(
            Job("python", {"main.py": "while True: pass\n"}, limits=short), owner="carol"
        )
        assert result.status == "timeout" and time.monotonic() - t0 < 10, result

        # a graded run: tests, score; stdin then EOF with run()
        result, _ = await ex.run(
            Job(
                "python",
                {"calc.py": "def add(a, b):\n    return a + b\n"},
                tests={
                    "test_calc.py": "from calc import add\n\n"
                    "def test_ok():\n    assert add(2, 2) == 4\n\n"
                    "def test_bad():\n    assert add(2, 2) == 5\n"
                },
            ),
            owner="dave",
        )
        assert result.status == "ok" and result.score == 0.5, result
        assert [t.passed for t in sorted(result.tests or [], key=lambda t: t.name)] == [
            False,
            True,
        ]

        # the job is checked on the server: a JobError comes at once, nothing is queued
        with pytest.raises(JobError, match="unknown language"):
            await ex.start_run(Job("cobol", {"a.cob": ""}), owner="eve", on_output=print)

        # runs spread over both workers when they overlap
        jobs = [
            ex.run(Job("python", {"main.py": "import time\ntime.sleep(1)\n"}), owner=f"u{i}")
            for i in range(4)
        ]
        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*jobs), 30)
        assert all(r.status == "ok" for r, _ in results)
        took = time.monotonic() - started
        for w in workers:
            await wait_for(
                lambda w=w: any(e.get("event") == "job finished" for e in w.log_lines()),
                10,
                f"{w.name} ran a job",
            )
        # the queue is empty and the per-run streams are gone
        r = ex.redis
        keys = Keys(redis_prefix)

        async def queue_empty() -> bool:
            return await r.xlen(keys.jobs) == 0  # acknowledged and deleted after the exit

        await wait_for(queue_empty, 5, "every job settled")

        async def deleted() -> bool:
            return await r.exists(keys.events(run.id), keys.control(run.id)) == 0

        await wait_for(deleted, 5, "the run's streams deleted")
        print(f"4 overlapping 1-second runs on 2 workers took {took:.2f}s")
    finally:
        await ex.close()


async def test_a_worker_killed_mid_run_ends_the_run_as_worker_lost(
    redis_prefix,
    worker_factory,
):
    workers = {w.name: w for w in (worker_factory(redis_prefix), worker_factory(redis_prefix))}
    ex = await remote(redis_prefix)
    try:
        chunks: list[OutputChunk] = []
        run = await ex.start_run(
            Job("python", {"main.py": "import time\nprint('going', flush=True)\ntime.sleep(60)\n"}),
            owner="alice",
            on_output=chunks.append,
        )
        await wait_for(lambda: text(chunks) == "going\n", 10, "the run's first output")
        victim = workers[run.worker]
        os.kill(victim.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        result = await asyncio.wait_for(run.wait(), 20)
        took = time.monotonic() - killed_at
        assert result.status == "error" and result.message.startswith("worker lost"), result
        assert run.worker in result.message
        assert took < 10, f"the loss took {took:.1f}s to notice"
        print(f"worker lost noticed {took:.2f}s after kill -9")

        # the other worker takes the dead one's pending job over and settles it
        keys = Keys(redis_prefix)

        async def settled() -> bool:
            summary = await ex.redis.xpending(keys.jobs, GROUP)
            return summary["pending"] == 0

        await wait_for(settled, 20, "the dead worker's job reclaimed and acknowledged")
        survivor = next(w for n, w in workers.items() if n != run.worker)
        assert any(e.get("event") == "run lost with its worker" for e in survivor.log_lines())

        # runs go on on the survivor
        result, out = await ex.run(Job("python", {"main.py": "print(7)\n"}), owner="alice")
        assert result.status == "ok" and text(out) == "7\n"
    finally:
        await ex.close()


async def test_no_worker_fails_clearly_after_the_queue_wait(redis_prefix):
    ex = await remote(redis_prefix, queue_wait=2.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(ExecutorError, match="no run worker started the run within 2 s"):
            await ex.start_run(Job("python", {"main.py": "print(1)\n"}), owner="a", on_output=print)
        assert time.monotonic() - t0 < 5
        with pytest.raises(ExecutorError, match="no run worker"):
            await ex.run(Job("python", {"main.py": "print(1)\n"}), owner="a")
        assert await ex.redis.xlen(Keys(redis_prefix).jobs) == 0, "cancelled jobs removed"
    finally:
        await ex.close()


async def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_retried(
    redis_prefix,
    worker_factory,
):
    """A consumer that takes the job and dies before starting it (a real consumer of the
    group that never comes back): a live worker reclaims the job and runs it once."""
    keys = Keys(redis_prefix)
    ex = await remote(redis_prefix, queue_wait=30.0)
    ghost = aioredis.from_url(REDIS_URL)
    try:
        starting = asyncio.ensure_future(
            ex.run(Job("python", {"main.py": "print('retried')\n"}), owner="alice")
        )
        taken: list[object] = []

        async def take() -> bool:
            answer = await ghost.xreadgroup(GROUP, "ghost", {keys.jobs: ">"}, count=1)
            taken.extend(answer or [])
            return bool(taken)

        await wait_for(take, 10, "the ghost took the job")
        worker_factory(redis_prefix)  # only now: the job is in the ghost's pending list
        result, out = await asyncio.wait_for(starting, 30)
        assert result.status == "ok" and text(out) == "retried\n", result
    finally:
        await ghost.aclose()
        await ex.close()


async def test_sigterm_lets_a_worker_finish_its_run_and_take_no_more(
    redis_prefix,
    worker_factory,
):
    worker = worker_factory(redis_prefix)
    ex = await remote(redis_prefix, queue_wait=3.0)
    try:
        chunks: list[OutputChunk] = []
        run = await ex.start_run(
            Job("python", {"main.py": "import time\nprint('a', flush=True)\ntime.sleep(2)\n"}),
            owner="alice",
            on_output=chunks.append,
        )
        await wait_for(lambda: text(chunks) == "a\n", 10, "output")
        worker.process.send_signal(signal.SIGTERM)
        result = await asyncio.wait_for(run.wait(), 15)
        assert result.status == "ok", result
        await wait_for(lambda: worker.process.poll() is not None, 30, "the worker exited")
        assert worker.process.returncode == 0
        with pytest.raises(ExecutorError, match="no run worker"):
            await ex.run(Job("python", {"main.py": "print(1)\n"}), owner="alice")
    finally:
        await ex.close()
