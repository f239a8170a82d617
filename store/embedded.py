"""An embedded Postgres in a folder of our own, for laptops with no DATABASE_URL.

The binaries come from the ``pgserver`` wheel (Postgres 16). pgserver runs
``initdb`` on first use, starts the server listening on a Unix socket only
(inside the data folder, so no TCP port can clash), and reuses a server that
is still running on the folder, e.g. after this process was killed.

Postgres refuses to run as root. Under root, pgserver creates a system user
``pgserver`` (``useradd``), makes the data folder its own and runs ``initdb``
and ``pg_ctl`` as that user; to let it reach the folder, it adds read and
search permission for others to every parent directory of the data folder.

Every pgserver call blocks (it waits for the server with ``time.sleep``), so
each runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from .dsn import with_database
from .errors import StoreUnavailable

if TYPE_CHECKING:
    from pgserver import PostgresServer

log = logging.getLogger("opencode_live.store")

DEFAULT_DATABASE = "opencode_live"

#: How long ``stop`` waits for the postmaster to exit after ``pg_ctl stop``.
STOP_TIMEOUT_SECONDS = 30.0


class EmbeddedPostgres:
    """Start and stop a private Postgres whose cluster lives in ``data_dir``.

    ``data_dir`` is the cluster folder itself (PGDATA); it and its parents are
    created if missing. ``start`` returns a DSN for ``database``, created on
    first start so that our tables do not sit in the ``postgres`` maintenance
    database. Use one instance per folder in a process: pgserver shares one
    handle per folder, so stopping either instance would stop both.
    """

    def __init__(self, data_dir: Path, *, database: str = DEFAULT_DATABASE) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self._server: PostgresServer | None = None
        self._dsn: str | None = None

    @property
    def dsn(self) -> str:
        """The DSN ``start`` returned; an error before it."""
        if self._dsn is None:
            raise RuntimeError("embedded Postgres is not started")
        return self._dsn

    async def start(self) -> str:
        """Initialise the cluster if needed, start (or adopt) the server, return the DSN."""
        if self._dsn is not None:
            return self._dsn
        get_server = _import_pgserver()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = await asyncio.to_thread(get_server, self.data_dir, cleanup_mode="stop")
        except Exception as exc:
            raise StoreUnavailable(
                f"embedded Postgres in {self.data_dir} did not start: {exc} "
                f"(server log: {self.data_dir / 'log'})"
            ) from exc
        await asyncio.to_thread(_forget_dead_handles, self._server)
        admin_dsn = self._server.get_uri()
        await _ensure_database(admin_dsn, self.database)
        self._dsn = with_database(admin_dsn, self.database)
        log.info("embedded postgres started", extra={"data_dir": str(self.data_dir)})
        return self._dsn

    async def stop(self) -> None:
        """Stop the server (a fast shutdown: connections still open are cut)."""
        server, self._server, self._dsn = self._server, None, None
        if server is None:
            return
        await asyncio.to_thread(_stop_and_wait, server, STOP_TIMEOUT_SECONDS)
        log.info("embedded postgres stopped", extra={"data_dir": str(self.data_dir)})


def _import_pgserver() -> Callable[..., PostgresServer]:
    """Import pgserver lazily: only the embedded default needs it.

    Its import asks platformdirs for a runtime folder, which warns where
    XDG_RUNTIME_DIR is unset (containers, CI); the fallback it takes is fine.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver import get_server
    except ImportError as exc:
        raise StoreUnavailable(
            "no DATABASE_URL and the embedded Postgres (PyPI package pgserver) is not installed"
        ) from exc
    return get_server


def _stop_and_wait(server: PostgresServer, timeout: float) -> None:
    """Stop the server and return only once its postmaster process has exited.

    ``pg_ctl stop -w`` returns when the pid file is gone, a moment before the
    process ends; a caller that restarts on the same folder, or checks that
    nothing is left running, needs the process gone.
    """
    process = server.get_postmaster_info().process
    server.cleanup()
    if process is None:
        return
    try:
        process.wait(timeout)
    except Exception:  # psutil.TimeoutExpired; psutil is pgserver's, not ours to import
        if process.is_running():
            log.warning("embedded postgres still running after stop", extra={"pid": process.pid})


def _forget_dead_handles(server: PostgresServer) -> None:
    """Drop the pids of dead processes from pgserver's list of users of the server.

    pgserver stops the server only when the last process on its list lets go;
    a process killed with SIGKILL never takes itself off, and would keep every
    later clean shutdown from stopping the server.
    """
    handles = server.global_process_id_list
    for pid in handles.get():
        if pid != os.getpid() and not _alive(pid):
            handles.get_and_remove(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _ensure_database(admin_dsn: str, database: str) -> None:
    """Create ``database`` unless it exists (a no-op after the first start)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            quoted = '"' + database.replace('"', '""') + '"'
            # Another process starting on the same folder may win the race: fine.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()
