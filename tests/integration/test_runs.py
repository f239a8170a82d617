"""Runs in rooms against the real server and a real Docker Engine."""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Text

from tests.pyclient import YClient, eventually

pytestmark = pytest.mark.usefixtures("docker_engine")

OWNER = {"user_id": "olive", "name": "Olive"}
VIEWER = {"user_id": "vic", "name": "Vic"}

RUN_FLAGS = ("--run-pool-warm", "2", "--run-wall-seconds", "5", "--run-memory-mb", "256")


async def _client(server, tokens, room: str, who: dict) -> tuple[aiohttp.ClientSession, YClient]:
    session = aiohttp.ClientSession()
    client = YClient(session, f"{server.ws}/rooms/{room}?ext=1&token={tokens.token(**who)}")
    await client.connect()
    await client.wait_synced()
    return session, client


def _of(client: YClient, kind: str, run: str | None = None) -> list[dict]:
    return [
        m
        for m in client.room_messages
        if m["type"] == kind and (run is None or m.get("run") == run)
    ]


async def _exit(client: YClient, timeout: float = 20) -> dict:
    await eventually(lambda: _of(client, "run.exit"), timeout=timeout, what="run.exit")
    return _of(client, "run.exit")[-1]


def _stdout(client: YClient, run: str) -> str:
    chunks = sorted(_of(client, "run.output", run), key=lambda m: m["seq"])
    return "".join(m["data"] for m in chunks if m["stream"] == "stdout")


@pytest.fixture
async def room(server_factory, tokens):
    """A public room with its owner and a viewer connected; closed at the end."""
    server = server_factory(*RUN_FLAGS)
    opened: list[tuple[aiohttp.ClientSession, YClient]] = []

    async def join(who: dict, name: str = "lab") -> YClient:
        pair = await _client(server, tokens, name, who)
        opened.append(pair)
        return pair[1]

    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        async with s.post(f"{server.http}/api/rooms", json={"id": "lab", "visibility": "public"}):
            pass
    try:
        yield server, join
    finally:
        for session, client in opened:
            await client.close()
            await session.close()


async def test_everyone_in_the_room_sees_the_run_live(room):
    _server, join = room
    owner = await join(OWNER)
    viewer = await join(VIEWER)
    owner.edit(
        lambda f: f.__setitem__(
            "main.py",
            Text("import sys\nprint('out 1')\nprint('err 1', file=sys.stderr)\nprint('out 2')\n"),
        )
    )
    await eventually(lambda: viewer.text("main.py") is not None)
    await owner.send_room({"type": "run"})
    for client in (owner, viewer):
        end = await _exit(client)
        assert end["status"] == "ok" and end["exit_code"] == 0
        started = _of(client, "run.started")[0]
        assert (started["entry"], started["language"], started["by"]) == (
            "main.py",
            "python",
            "Olive",
        )
        assert _stdout(client, end["run"]) == "out 1\nout 2\n"
        errs = [m["data"] for m in _of(client, "run.output", end["run"]) if m["stream"] == "stderr"]
        assert "".join(errs) == "err 1\n"
        assert end["wall_ms"] > 0 and end["peak_memory_bytes"] >= 0


async def test_viewer_cannot_run_and_input_reaches_the_program(room):
    _server, join = room
    owner = await join(OWNER)
    viewer = await join(VIEWER)
    owner.edit(lambda f: f.__setitem__("main.py", Text("name = input()\nprint('hello', name)\n")))
    await eventually(lambda: viewer.text("main.py") is not None)
    await viewer.send_room({"type": "run"})
    await eventually(
        lambda: any(m.get("code") == "permission-denied" for m in viewer.room_messages)
    )
    assert not _of(owner, "run.started")

    await owner.send_room({"type": "run"})
    await eventually(lambda: _of(owner, "run.started"), what="started")
    run = _of(owner, "run.started")[0]["run"]
    await viewer.send_room({"type": "run.input", "run": run, "data": "Mallory\n"})
    await eventually(
        lambda: sum(m.get("code") == "permission-denied" for m in viewer.room_messages) == 2,
        what="the viewer's input refused",
    )
    await owner.send_room({"type": "run.input", "run": run, "data": "Ada\n"})
    end = await _exit(owner)
    assert end["status"] == "ok"
    assert _stdout(owner, run) == "hello Ada\n"


async def test_one_run_per_room_and_stop_keeps_partial_output(room):
    _server, join = room
    owner = await join(OWNER)
    owner.edit(
        lambda f: f.__setitem__(
            "main.py",
            Text("import time\nprint('before', flush=True)\nwhile True:\n    time.sleep(0.1)\n"),
        )
    )
    await owner.send_room({"type": "run"})
    await eventually(lambda: _of(owner, "run.started"))
    run = _of(owner, "run.started")[0]["run"]
    await eventually(lambda: _stdout(owner, run) == "before\n", what="partial output")
    await owner.send_room({"type": "run"})
    await eventually(lambda: any(m.get("code") == "run-busy" for m in owner.room_messages))
    await owner.send_room({"type": "run.stop", "run": run})
    end = await _exit(owner)
    assert end["status"] == "killed"


async def test_time_limit_ends_a_run_with_timeout_and_the_room_lives(room):
    _server, join = room
    owner = await join(OWNER)
    owner.edit(
        lambda f: f.__setitem__("main.py", Text("print('spin', flush=True)\nwhile True: pass\n"))
    )
    await owner.send_room({"type": "run"})
    end = await _exit(owner, timeout=30)
    assert end["status"] == "timeout"
    assert _stdout(owner, end["run"]) == "spin\n"
    # the room and the next run carry on
    owner.edit(lambda f: f.__setitem__("main.py", Text("print(2)\n")))
    await owner.send_room({"type": "run"})
    await eventually(lambda: len(_of(owner, "run.exit")) == 2, timeout=20)
    last = _of(owner, "run.exit")[-1]
    assert last["status"] == "ok" and _stdout(owner, last["run"]) == "2\n"


async def test_requester_leaving_an_empty_room_stops_the_run(room, tokens):
    server, _join = room
    session, owner = await _client(server, tokens, "lab", OWNER)
    owner.edit(lambda f: f.__setitem__("main.py", Text("import time\ntime.sleep(60)\n")))
    await owner.send_room({"type": "run"})
    await eventually(lambda: _of(owner, "run.started"))
    await owner.close()
    await session.close()

    def finished() -> list[dict]:
        return [line for line in server.log_lines() if line.get("event") == "run finished"]

    await eventually(lambda: finished(), timeout=8, what="run stopped within 5 s + margin")
    assert finished()[0]["status"] == "killed"


async def test_http_room_run_and_standalone_run_with_grading(room, tokens):
    server, join = room
    watcher = await join(OWNER)
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        async with s.put(f"{server.http}/api/rooms/lab/files/main.py", data="print(6 * 7)\n") as r:
            assert r.status == 201
        async with s.post(f"{server.http}/api/rooms/lab/runs", json={}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert (body["status"], body["stdout"], body["entry"]) == ("ok", "42\n", "main.py")
        await eventually(lambda: _of(watcher, "run.exit"), what="the room watched it")

        files = {"calc.py": "def add(a, b):\n    return a + b\n"}
        tests = {
            "test_calc.py": (
                "from calc import add\n\n"
                "def test_adds():\n    assert add(2, 2) == 4\n\n"
                "def test_wrong():\n    assert add(2, 2) == 5\n"
            )
        }
        async with s.post(
            f"{server.http}/api/runs", json={"language": "python", "files": files, "tests": tests}
        ) as r:
            assert r.status == 200, await r.text()
            graded = await r.json()
        outcomes = {t["name"]: t["passed"] for t in graded["tests"]}
        assert any("test_adds" in n and ok for n, ok in outcomes.items())
        assert any("test_wrong" in n and not ok for n, ok in outcomes.items())
        assert graded["score"] == pytest.approx(0.5)

        async with s.post(
            f"{server.http}/api/runs", json={"language": "cobol", "files": files}
        ) as r:
            assert r.status == 400
        async with s.post(
            f"{server.http}/api/runs", json={"language": "python", "files": {"../x.py": ""}}
        ) as r:
            assert r.status == 400
    async with aiohttp.ClientSession(headers=tokens.auth(**VIEWER)) as s:
        async with s.post(f"{server.http}/api/rooms/lab/runs", json={}) as r:
            assert r.status == 403


async def test_runs_per_hour_are_limited_per_user(server_factory, tokens):
    server = server_factory(*RUN_FLAGS, "--runs-per-hour", "2")
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        job = {"language": "python", "files": {"main.py": "print(1)"}}
        for _ in range(2):
            async with s.post(f"{server.http}/api/runs", json=job) as r:
                assert r.status == 200
        async with s.post(f"{server.http}/api/runs", json=job) as r:
            assert r.status == 429
            assert int(r.headers["Retry-After"]) > 0
            assert "2 runs per hour" in (await r.json())["error"]
    session, client = await _client(server, tokens, "quota", OWNER)
    try:
        client.edit(lambda f: f.__setitem__("main.py", Text("print(1)")))
        await client.send_room({"type": "run"})
        await eventually(lambda: any(m.get("code") == "rate-limited" for m in client.room_messages))
    finally:
        await client.close()
        await session.close()


async def test_without_an_engine_rooms_work_and_runs_say_why(server_factory, tokens):
    server = server_factory("--docker-host", "unix:///nonexistent/docker.sock")
    async with aiohttp.ClientSession(headers=tokens.auth(**OWNER)) as s:
        async with s.get(f"{server.http}/readyz") as r:
            body = await r.json()
        assert r.status == 200 and body["checks"]["runs"].startswith("unavailable")
        async with s.post(
            f"{server.http}/api/runs", json={"language": "python", "files": {"main.py": "1"}}
        ) as r:
            assert r.status == 503 and "unavailable" in (await r.json())["error"]
    session, client = await _client(server, tokens, "nodocker", OWNER)
    try:
        # the page learns what the server runs from the server, engine or not
        await eventually(lambda: any(m["type"] == "run.languages" for m in client.room_messages))
        told = next(m for m in client.room_messages if m["type"] == "run.languages")
        assert {"name": "python", "entry": "main.py", "extensions": [".py"]} in told["languages"]
        assert [m["type"] for m in client.room_messages].index("hello") == 0
        client.edit(lambda f: f.__setitem__("main.py", Text("print(1)")))
        await client.send_room({"type": "run"})
        await eventually(
            lambda: any(m.get("code") == "runs-unavailable" for m in client.room_messages)
        )
    finally:
        await client.close()
        await session.close()
