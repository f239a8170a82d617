"""The Docker Engine missing, going away and coming back; leftovers of earlier processes.

An engine outage is played with a relay socket in front of the real engine
(stopping the relay cuts every connection, as a dying dockerd does), so the
machine's dockerd is never restarted under other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from executor import Executor, ExecutorConfig, ExecutorError, Job
from executor.engine import LABEL, LABEL_HOST, LABEL_INSTANCE, LABEL_PROCESS
from tests.conftest import need

from .conftest import IMAGE, make_config, run_py, text

pytestmark = pytest.mark.asyncio(loop_scope="module")


def engine_socket() -> str:
    """The unix socket of the engine the tests use (the relay forwards to it)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    need(
        host.startswith("unix://"),
        f"the outage relay needs a unix-socket engine, DOCKER_HOST is {host}",
    )
    return host.removeprefix("unix://")


class Relay:
    """A unix socket that forwards every connection to the engine's socket, until stopped."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(128)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture
def relay(tmp_path: Path, docker_ready: None) -> Iterator[Relay]:
    r = Relay(tmp_path / "engine.sock", engine_socket())
    r.start()
    yield r
    r.stop()


def our_containers(instance: str) -> list[str]:
    client = docker.from_env(version="auto")
    try:
        return [
            c.id
            for c in client.containers.list(
                all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
            )
        ]
    finally:
        client.close()


async def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_no_engine_runs_are_refused_at_once_with_the_reason() -> None:
    ex = Executor(ExecutorConfig(docker_host="unix:///nonexistent.sock"))
    t0 = time.monotonic()
    await ex.start()  # never raises
    try:
        assert time.monotonic() - t0 < 3.0
        assert ex.available is False
        assert "unix:///nonexistent.sock" in ex.reason and "does not exist" in ex.reason, ex.reason
        t0 = time.monotonic()
        with pytest.raises(ExecutorError, match=r"runs are unavailable: .*nonexistent\.sock"):
            await ex.start_run(Job("python", {"main.py": "print(1)"}), owner="a", on_output=print)
        assert time.monotonic() - t0 < 0.5
        with pytest.raises(ExecutorError):
            await ex.run(Job("python", {"main.py": "print(1)"}), owner="a")
        assert set(ex.languages) >= {"python", "javascript"}
    finally:
        t0 = time.monotonic()
        await ex.close()
        assert time.monotonic() - t0 < 3.0


async def test_engine_outage_is_reported_and_recovered_from(relay: Relay) -> None:
    ex = Executor(make_config(docker_host=f"unix://{relay.path}", warm=1))
    await ex.start()
    try:
        assert ex.available, ex.reason
        result, chunks = await run_py(ex, "print('before')", owner="a")
        assert result.status == "ok" and text(chunks) == "before\n"

        # a run in flight when the engine goes away ends (as an error), it does not hang
        running = await ex.start_run(
            Job("python", {"main.py": "import time\ntime.sleep(30)"}), owner="b", on_output=print
        )
        relay.stop()
        result = await asyncio.wait_for(running.wait(), 5)
        assert result.status == "error" and "the run failed" in result.message, result

        assert await wait_until(lambda: not ex.available, 6), "the outage was not noticed"
        assert "engine.sock" in ex.reason, ex.reason
        t0 = time.monotonic()
        with pytest.raises(ExecutorError, match="runs are unavailable"):
            await ex.run(Job("python", {"main.py": "print(1)"}), owner="a")
        assert time.monotonic() - t0 < 0.5

        relay.start()
        assert await wait_until(lambda: ex.available, 15), f"not recovered: {ex.reason}"
        result, chunks = await run_py(ex, "print('after')", owner="a")
        assert result.status == "ok" and text(chunks) == "after\n"
        instance = ex._instance
    finally:
        await ex.close()
    assert our_containers(instance) == [], "close() must remove every container it made"


async def test_leftovers_of_dead_processes_are_removed_at_start(docker_ready: None) -> None:
    client = docker.from_env(version="auto")
    hostname = socket.gethostname()
    made = []
    try:
        for name, process in (("dead", "999999999:1"), ("alive", None)):
            if process is None:  # a live executor's container (this very process) stays
                from executor.cgroups import this_process_tag

                process = this_process_tag()
            c = client.containers.create(
                IMAGE,
                ["sleep", "infinity"],
                labels={
                    LABEL: "1",
                    LABEL_INSTANCE: f"test-{name}",
                    LABEL_HOST: hostname,
                    LABEL_PROCESS: process,
                },
                network_mode="none",
                log_config={"type": "none"},
            )
            c.start()
            made.append(c)
        ex = Executor(make_config(warm=0))
        await ex.start()
        await ex.close()
        names = {c.id: n for c, n in zip(made, ("dead", "alive"), strict=True)}
        left = {
            names[c.id]
            for c in client.containers.list(all=True, filters={"label": LABEL})
            if c.id in names
        }
        assert left == {"alive"}
    finally:
        for c in made:
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)
        client.close()


async def test_close_stops_runs_and_removes_containers(docker_ready: None) -> None:
    ex = Executor(make_config(warm=2))
    await ex.start()
    assert await ex.wait_warm(30)
    run = await ex.start_run(
        Job("python", {"main.py": "import time\ntime.sleep(60)"}), owner="a", on_output=print
    )
    instance = ex._instance
    assert len(our_containers(instance)) >= 2
    t0 = time.monotonic()
    await ex.close()
    assert time.monotonic() - t0 < 10
    result = await asyncio.wait_for(run.wait(), 1)
    assert result.status == "killed"
    assert our_containers(instance) == []
    with pytest.raises(ExecutorError, match="closed"):
        await ex.run(Job("python", {"main.py": "print(1)"}), owner="a")
