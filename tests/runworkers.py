"""Fixtures for run workers: real worker processes, on a Redis key prefix of the test's own.

Redis is the machine's, shared (``REDIS_URL`` and the ``redis_prefix`` fixture in
tests/conftest.py: the keys under the test's prefix are deleted at the end, never a
flush). Workers are ``python -m server.cli worker`` processes on the machine's
Docker Engine; each is stopped at the end, and the containers of one killed with
``kill -9`` (which cannot remove its own) are removed by their label. tests/conftest.py
loads this module as a plugin, so ``worker_factory`` needs no import.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, ROOT, RUN_IMAGE, LoggedProcess

WORKER_FLAGS = (
    "--run-image",
    RUN_IMAGE,
    "--run-pool-warm",
    "1",
    "--run-pool-max",
    "8",
    "--run-wall-seconds",
    "10",
    "--run-memory-mb",
    "256",
)


@dataclass
class WorkerProcess(LoggedProcess):
    name: str = ""
    tag: str = ""

    def stop(self, timeout: float = 60.0) -> int:
        return super().stop(timeout)

    def remove_containers(self) -> None:
        """The containers a killed worker left (labelled with its process)."""
        if not self.tag:
            return
        found = subprocess.run(
            [
                "docker",
                "ps",
                "-aq",
                "--filter",
                f"label=org.opencode-live.executor.process={self.tag}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.split()
        if found:
            subprocess.run(
                ["docker", "rm", "-f", *found], capture_output=True, timeout=60, check=False
            )


def start_worker(
    tmp_path: Path, prefix: str, *args: str, env: dict[str, str] | None = None
) -> WorkerProcess:
    """A worker process; returns once it logged "worker started" (its pool may still warm)."""
    from executor.cgroups import process_start_time

    log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "worker",
            "--redis-url",
            REDIS_URL,
            "--run-queue-prefix",
            prefix,
            *WORKER_FLAGS,
            *args,
        ],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    worker = WorkerProcess(process, log_path)
    worker.tag = f"{process.pid}:{process_start_time(process.pid) or '?'}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text()}")
        for line in worker.log_lines():
            if line.get("event") == "worker started":
                worker.name = str(line["worker"])
                assert line.get("runs") == "ok", line
                return worker
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"worker did not start:\n{log_path.read_text()}")


@pytest.fixture
def worker_factory(tmp_path: Path, docker_engine: None) -> Iterator[object]:
    """Start workers (``factory(prefix, *flags)``); all stopped at the end."""
    started: list[WorkerProcess] = []

    def factory(prefix: str, *args: str) -> WorkerProcess:
        worker = start_worker(tmp_path, prefix, *args)
        started.append(worker)
        return worker

    try:
        yield factory
    finally:
        for worker in started:
            worker.stop()
            worker.remove_containers()


async def wait_for(check, timeout: float, what: str, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    """Poll an async or plain ``check`` until truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
