"""Shared fixtures: a real ``opencode-live serve`` process on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, reason: str) -> None:
    """Skip outside CI when a service or tool is missing; in CI that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                lines.append({"raw": line})
        return lines

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start the real CLI on port 0 and read the port it bound from its log."""
    log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0", *args],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        for line in log_path.read_text().splitlines():
            if '"event":"listening"' in line:
                port = json.loads(line)["port"]
                return ServerProcess(process, port, log_path)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with default settings but a short unload grace, for each test."""
    proc = start_server(tmp_path, "--unload-grace-seconds", "0.5")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    """Start servers with custom flags; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        proc = start_server(tmp_path, *args, env=env)
        started.append(proc)
        return proc

    try:
        yield factory
    finally:
        for proc in started:
            proc.stop()
