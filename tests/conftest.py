"""Shared fixtures: a real ``opencode-live serve`` process on a free loopback port.

Also the machine's Redis, shared by everyone's tests: each test that needs it gets
a key prefix of its own (``redis_prefix``), whose keys are deleted after all of
the test's fixtures are torn down (never a flush).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import redis

from server.tokens import TokenVerifier, load_or_create_secret
from store import EmbeddedPostgres, StoreUnavailable, with_database

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"

#: Load the run-worker fixtures (``worker_factory``) for every test directory.
pytest_plugins = ["tests.runworkers"]


def need(condition: bool, reason: str) -> None:
    """Skip outside CI when a service or tool is missing; in CI that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


# -- the machine's Redis ------------------------------------------------------------------------

#: The shared Redis the tests use, each under a prefix of its own.
REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)


def redis_reason(url: str) -> str | None:
    """None if a Redis answers at ``url``, else why not."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"no Redis at {url}: {exc}"
    return None


def delete_prefix(url: str, prefix: str) -> int:
    """Delete the keys under ``prefix`` at ``url`` (never a flush); how many there were."""
    if not prefix:
        raise ValueError("an empty prefix would delete every key")
    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


_REDIS_PREFIXES = pytest.StashKey[list[str]]()


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    """The test's own key and channel namespace on the shared Redis.

    Its keys are deleted by ``pytest_runtest_teardown`` below, once all of the test's
    fixtures are torn down: servers and workers stopped in teardown write no key after.
    """
    reason = redis_reason(REDIS_URL)
    need(reason is None, reason or "")
    prefix = f"ocl-test-{uuid.uuid4().hex[:12]}:"
    request.node.stash.setdefault(_REDIS_PREFIXES, []).append(prefix)
    return prefix


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After the test's fixtures are torn down, delete the keys under its Redis prefix."""
    try:
        return (yield)
    finally:
        for prefix in item.stash.get(_REDIS_PREFIXES, []):
            delete_prefix(REDIS_URL, prefix)


T = TypeVar("T")


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop, leaving the test's loop alone."""

    async def main() -> T:
        return await make()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def _probe(dsn: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN on the test server that may create and drop databases."""
    url = os.environ.get("DATABASE_URL")
    if url:
        error = run_in_thread(lambda: _probe(url))
        need(error is None, f"DATABASE_URL is set but the server does not answer: {error}")
        yield url
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "pgdata")
    try:
        dsn = run_in_thread(embedded.start)
    except StoreUnavailable as exc:
        need(False, f"no DATABASE_URL and no embedded Postgres: {exc}")
        raise  # unreachable: need() skipped or failed
    try:
        yield with_database(dsn, "postgres")
    finally:
        run_in_thread(embedded.stop)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def scratch_database(admin_dsn: str, prefix: str = "test") -> Iterator[str]:
    """A brand-new database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_in_thread(lambda: run(f"CREATE DATABASE {quote_identifier(name)}"))
    try:
        yield with_database(admin_dsn, name)
    finally:
        run_in_thread(lambda: run(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)"))


@pytest.fixture
def database_url(admin_dsn: str) -> Iterator[str]:
    """The test's own database: servers started by the test store their rooms there."""
    with scratch_database(admin_dsn, "test_srv") as dsn:
        yield dsn


@dataclass
class Tokens:
    """Tokens the test's servers accept: signed with the secret in their data folder.

    Every server a test starts shares ``<tmp>/data``, so one secret signs for all.
    """

    data_dir: Path

    def verifier(self) -> TokenVerifier:
        secret = load_or_create_secret(self.data_dir)
        return TokenVerifier(secret=secret, issuer="opencode-live", audience="opencode-live")

    def token(
        self,
        *,
        role: str = "student",
        name: str = "Tester",
        user_id: str = "tester",
        cohort: str | None = None,
        room: str | None = None,
        ttl_seconds: int = 3600,
    ) -> str:
        return self.verifier().mint(
            name=name,
            role=role,
            user_id=user_id,
            cohort=cohort,
            room=room,
            ttl_seconds=ttl_seconds,
        )

    def auth(self, **claims: Any) -> dict[str, str]:
        """Headers that sign a client in (``token()``'s claims; a student by default)."""
        return {"Authorization": f"Bearer {self.token(**claims)}"}


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return Tokens(tmp_path / "data")


@dataclass
class LoggedProcess:
    """A process a test started, logging JSON lines to ``log_path``."""

    process: subprocess.Popen[str]
    log_path: Path

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                lines.append({"raw": line})
        return lines

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@dataclass
class ServerProcess(LoggedProcess):
    port: int
    data_dir: Path

    def token(self, **claims: Any) -> str:
        return Tokens(self.data_dir).token(**claims)

    def auth(self, **claims: Any) -> dict[str, str]:
        return Tokens(self.data_dir).auth(**claims)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


#: Settings a test server must not inherit from the machine: a ``REDIS_URL`` in
#: the environment would join every test's servers into one cluster, on the
#: default bus prefix (a test that wants Redis passes it, with a prefix of its own).
_NOT_INHERITED = ("REDIS_URL", "OPENCODE_LIVE_BUS_PREFIX", "OPENCODE_LIVE_RUN_QUEUE")


def _server_env(env: dict[str, str] | None) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    return {**inherited, **(env or {})}


def start_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start the real CLI on port 0 and read the port it bound from its log."""
    log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    data_dir = tmp_path / "data"
    load_or_create_secret(data_dir)  # made here, so test and server never race to create it
    log_file = log_path.open("w")
    process = subprocess.Popen(
        # its own data folder: the auth secret it creates stays in the test's tmp dir
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            # no warm run containers for the many servers that never run code (a test
            # that does passes its own --run-pool-warm, which comes later and wins)
            "--run-pool-warm",
            "0",
            *args,
        ],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        env=_server_env(env),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        for line in log_path.read_text().splitlines():
            if '"event":"listening"' in line:
                port = json.loads(line)["port"]
                return ServerProcess(process, log_path, port, data_dir)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


RUN_IMAGE = os.environ.get("OPENCODE_RUNNER_IMAGE", "opencode-live/runner:1")


def docker_reason() -> str | None:
    """None when a Docker Engine answers and has the run image, else why not."""
    try:
        import docker
        import docker.errors
    except ImportError:
        return "the docker SDK is not installed (pip install docker)"
    from executor.engine import describe

    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(version="auto", timeout=5)
    except Exception as exc:
        return f"no Docker Engine for runs: {describe(exc, where)}"
    try:
        client.ping()
        client.images.get(RUN_IMAGE)
    except docker.errors.ImageNotFound:
        return f"the image {RUN_IMAGE} is missing: run executor/images/build.sh"
    except Exception as exc:
        return f"the Docker Engine does not answer: {describe(exc, where)}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Tests that run code need a real Docker Engine and the run image."""
    reason = docker_reason()
    need(reason is None, reason or "")


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """A server with default settings but a short unload grace, for each test."""
    proc = start_server(
        tmp_path, "--unload-grace-seconds", "0.5", env={"DATABASE_URL": database_url}
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def server_factory(tmp_path: Path, database_url: str) -> Iterator[object]:
    """Start servers with custom flags on the test's database; all stopped at the end."""
    started: list[ServerProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        proc = start_server(tmp_path, *args, env={"DATABASE_URL": database_url, **(env or {})})
        started.append(proc)
        return proc

    try:
        yield factory
    finally:
        for proc in started:
            proc.stop()
