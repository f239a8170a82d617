"""Room runs on worker processes (issue 9 item 3): a ``--run-queue redis`` server with no
Docker Engine of its own (``DOCKER_HOST`` points nowhere) and real ``opencode-live worker``
processes on the machine's Docker Engine, sharing the machine's Redis under a test prefix."""

from __future__ import annotations

import os
import signal
import time

import aiohttp
import pytest
from pycrdt import Text

from tests.conftest import REDIS_URL
from tests.integration.test_runs import OWNER, VIEWER, _client, _exit, _of, _stdout
from tests.pyclient import eventually

pytestmark = pytest.mark.usefixtures("docker_engine")

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def queue_flags(prefix: str, wait: float = 15.0) -> tuple[str, ...]:
    return (
        "--run-queue",
        "redis",
        "--redis-url",
        REDIS_URL,
        # the bus and shared state (allowances, slots) under the test's prefix too
        "--bus-prefix",
        prefix,
        "--run-queue-prefix",
        prefix,
        "--run-queue-wait-seconds",
        str(wait),
        "--run-wall-seconds",
        "10",
        "--run-memory-mb",
        "256",
    )


async def open_room(server, tokens, opened: list) -> tuple:
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        async with s.post(f"{server.http}/api/rooms", json={"id": "lab", "visibility": "public"}):
            pass
    owner = await _client(server, tokens, "lab", OWNER)
    viewer = await _client(server, tokens, "lab", VIEWER)
    opened.extend([owner, viewer])
    return owner[1], viewer[1]


async def close_all(opened: list) -> None:
    for session, client in opened:
        await client.close()
        await session.close()


async def test_room_runs_stream_live_from_workers_and_grade(
    server_factory,
    tokens,
    redis_prefix,
    worker_factory,
):
    worker_factory(redis_prefix)
    worker_factory(redis_prefix)
    server = server_factory(*queue_flags(redis_prefix), env=NO_DOCKER)
    opened: list = []
    try:
        owner, viewer = await open_room(server, tokens, opened)
        owner.edit(
            lambda f: f.__setitem__(
                "main.py",
                Text(
                    "import sys\nprint('ready', flush=True)\nname = input()\n"
                    "print('err', file=sys.stderr)\nprint('hello', name)\n"
                ),
            )
        )
        await eventually(lambda: viewer.text("main.py") is not None)
        await owner.send_room({"type": "run"})
        await eventually(lambda: _of(owner, "run.started"), timeout=20, what="started")
        run = _of(owner, "run.started")[0]["run"]
        # live: the first line is seen by both before the program got its input
        for client in (owner, viewer):
            await eventually(lambda c=client: _stdout(c, run) == "ready\n", what="live output")
        assert not _of(viewer, "run.exit")
        await owner.send_room({"type": "run.input", "run": run, "data": "Ada\n"})
        for client in (owner, viewer):
            end = await _exit(client)
            assert (end["status"], end["exit_code"]) == ("ok", 0), end
            assert _stdout(client, run) == "ready\nhello Ada\n"

        async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
            tests = {
                "test_calc.py": "from calc import add\n\n"
                "def test_ok():\n    assert add(2, 2) == 4\n\n"
                "def test_bad():\n    assert add(2, 2) == 5\n"
            }
            files = {"calc.py": "def add(a, b):\n    return a + b\n"}
            async with s.post(
                f"{server.http}/api/runs",
                json={"language": "python", "files": files, "tests": tests},
            ) as r:
                assert r.status == 200, await r.text()
                graded = await r.json()
            assert graded["status"] == "ok" and graded["score"] == 0.5, graded
            async with s.get(f"{server.http}/readyz") as r:
                assert (await r.json())["checks"]["runs"] == "ok"
            async with s.get(f"{server.http}/metrics") as r:
                assert "opencode_live_run_queue_depth" in await r.text()
    finally:
        await close_all(opened)


async def test_a_worker_killed_mid_run_ends_the_room_run_clearly(
    server_factory,
    tokens,
    redis_prefix,
    worker_factory,
):
    workers = [worker_factory(redis_prefix), worker_factory(redis_prefix)]
    server = server_factory(*queue_flags(redis_prefix), env=NO_DOCKER)
    opened: list = []
    try:
        owner, _viewer = await open_room(server, tokens, opened)
        owner.edit(
            lambda f: f.__setitem__(
                "main.py", Text("import time\nprint('going', flush=True)\ntime.sleep(60)\n")
            )
        )
        await owner.send_room({"type": "run"})
        await eventually(lambda: _of(owner, "run.started"), timeout=20, what="started")
        run = _of(owner, "run.started")[0]["run"]
        await eventually(lambda: _stdout(owner, run) == "going\n", what="output")

        def has_job(w) -> bool:  # type: ignore[no-untyped-def]
            return any(e.get("event") == "job started" for e in w.log_lines())

        await eventually(lambda: any(has_job(w) for w in workers), what="a worker took it")
        victim = next(w for w in workers if has_job(w))
        os.kill(victim.process.pid, signal.SIGKILL)
        t0 = time.monotonic()
        end = await _exit(owner, timeout=20)
        took = time.monotonic() - t0
        assert end["status"] == "error" and end["message"].startswith("worker lost"), end
        assert took < 10, took

        # the room carries on, on the other worker
        owner.edit(lambda f: f.__setitem__("main.py", Text("print(2)\n")))
        await owner.send_room({"type": "run"})
        await eventually(lambda: len(_of(owner, "run.exit")) == 2, timeout=20, what="2nd exit")
        last = _of(owner, "run.exit")[-1]
        assert last["status"] == "ok" and _stdout(owner, last["run"]) == "2\n"
    finally:
        await close_all(opened)


async def test_without_workers_a_run_fails_clearly_after_the_queue_wait(
    server_factory,
    tokens,
    redis_prefix,
    worker_factory,
):
    server = server_factory(*queue_flags(redis_prefix, wait=2.0), env=NO_DOCKER)
    opened: list = []
    try:
        owner, _viewer = await open_room(server, tokens, opened)
        owner.edit(lambda f: f.__setitem__("main.py", Text("print(1)\n")))
        await owner.send_room({"type": "run"})
        t0 = time.monotonic()

        def refusal() -> list[dict]:
            return [m for m in owner.room_messages if m.get("code") == "runs-unavailable"]

        await eventually(lambda: refusal(), timeout=10, what="the refusal")
        assert time.monotonic() - t0 < 6
        assert "no run worker started the run within 2 s" in refusal()[0]["text"]
        assert "opencode-live worker" in refusal()[0]["text"]
        assert not _of(owner, "run.exit")

        # a worker that comes later serves the next run (the cancelled one stays cancelled)
        worker = worker_factory(redis_prefix)
        owner.edit(lambda f: f.__setitem__("main.py", Text("print(3)\n")))
        await owner.send_room({"type": "run"})
        end = await _exit(owner, timeout=20)
        assert end["status"] == "ok" and _stdout(owner, end["run"]) == "3\n"
        assert sum(e.get("event") == "job started" for e in worker.log_lines()) == 1
    finally:
        await close_all(opened)
