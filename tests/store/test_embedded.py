"""The embedded Postgres: starts as root too, keeps its data, stops for real."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from store import EmbeddedPostgres, Store
from tests.conftest import ROOT, need


@pytest.fixture(autouse=True)
def _pgserver_installed() -> None:
    """pgserver is a declared dependency: missing, it skips here and fails in CI."""
    need(importlib.util.find_spec("pgserver") is not None, "pgserver is not installed")


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_start_store_stop_and_start_again_keeps_the_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "pgdata"
    embedded = EmbeddedPostgres(data_dir)
    dsn = await embedded.start()
    assert dsn.startswith("postgresql://") and "/opencode_live?" in dsn
    assert await embedded.start() == dsn  # already started: same DSN
    try:
        store = await Store.open(dsn)
        try:
            assert await store.append_updates([("kept", b"one"), ("kept", b"two")]) == [1, 2]
        finally:
            await store.close()
        if os.geteuid() == 0:
            # Postgres never runs as root: the cluster belongs to pgserver's own user.
            assert data_dir.stat().st_uid != 0
        pid = _postmaster_pid(data_dir)
        assert pid is not None and _alive(pid)
    finally:
        await embedded.stop()
    assert _postmaster_pid(data_dir) is None
    assert not _alive(pid)
    await embedded.stop()  # stopping twice is fine

    again = EmbeddedPostgres(data_dir)
    store = await Store.open(await again.start())
    try:
        assert (await store.load_room("kept")).updates == [(1, b"one"), (2, b"two")]
    finally:
        await store.close()
        await again.stop()
    assert _postmaster_pid(data_dir) is None


def _start_in_a_process_then_kill_it(data_dir: Path) -> tuple[str, int]:
    """Start the embedded server from a child process and SIGKILL that child.

    Returns the DSN the child got and the pid of the Postgres it left running.
    """
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys; from pathlib import Path; from store import EmbeddedPostgres; "
            "print(asyncio.run(EmbeddedPostgres(Path(sys.argv[1])).start()), flush=True); "
            "sys.stdin.read()",
            str(data_dir),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        dsn = child.stdout.readline().strip()
        assert dsn, "child did not start the embedded server"
        orphan = _postmaster_pid(data_dir)
        assert orphan is not None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    return dsn, orphan


async def test_server_left_by_a_killed_process_is_adopted_then_stopped(tmp_path: Path) -> None:
    """kill -9 skips every cleanup: the next start reuses the server and may stop it."""
    data_dir = tmp_path / "pgdata"
    child_dsn, orphan = await asyncio.to_thread(_start_in_a_process_then_kill_it, data_dir)
    assert _alive(orphan)

    embedded = EmbeddedPostgres(data_dir)
    try:
        assert await embedded.start() == child_dsn
        assert _postmaster_pid(data_dir) == orphan
        store = await Store.open(embedded.dsn)
        await store.ping()
        await store.close()
    finally:
        await embedded.stop()
    assert _postmaster_pid(data_dir) is None
    assert not _alive(orphan)
