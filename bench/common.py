"""What every benchmark shares: the servers, /proc readings and a lean y-websocket client.

The load generator is one process on one asyncio (uvloop) loop. Its client is a
raw ``asyncio.Protocol`` with just enough WebSocket framing (RFC 6455 client
side: masked frames out, ping answered, close noticed) and just enough
y-websocket (it answers the server's sync step 1 with a step 2, sends its own
step 1 and, where a benchmark asks, an awareness state), so the reference
server and ours are treated alike.

Latency: a writer puts its send time (``time.monotonic_ns()``, one clock for
the whole machine) in the text it inserts, as ``@<ns>#``. A Yjs update carries
inserted text verbatim in UTF-8, so a subscriber finds the stamp in the update
bytes with one regex search, without decoding or applying the update.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import re
import resource
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pycrdt import Doc, Text  # noqa: E402

from crdt.awareness import encode_awareness_update  # noqa: E402
from crdt.protocol import awareness_message, sync_step1, sync_step2  # noqa: E402

REFERENCE_SERVER = BENCH / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
#: Our server's per-socket rate limits (and per-user API allowance) are raised out
#: of the way: the benchmarks measure throughput, e.g. one writer at 4,000 edits/s.
OURS_LIMIT_ARGS = [
    "--socket-messages-per-second",
    "1000000000",
    "--socket-message-burst",
    "1000000000",
    "--socket-bytes-per-second",
    "1000000000000",
    "--api-requests-per-hour",
    "1000000000",
]
SERVERS = ("ours", "reference")
#: Also accepted by --server: our server with its log in memory (persistence off).
EXTRA_SERVERS = ("ours-memlog",)
CLK_TCK = os.sysconf("SC_CLK_TCK")
TEXT_NAME = "bench"

# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit (servers started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(wanted, soft), hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle, not waiting for I/O), from /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _with_database(dsn: str, name: str) -> str:
    from store import with_database

    return with_database(dsn, name)


def _admin_sql(dsn: str, sql: str) -> None:
    """One statement on the database server, from a private thread and loop."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


class Server:
    """One server process this benchmark started; it is stopped by its PID only."""

    #: Extra flags for our server (``--ours-args``), for every Server started.
    ours_args: ClassVar[list[str]] = []

    def __init__(
        self,
        kind: str,
        extra_args: Iterable[str] = (),
        *,
        env: dict[str, str | None] | None = None,
        database_url: str | None = None,
    ) -> None:
        if kind not in SERVERS + EXTRA_SERVERS:
            raise ValueError(f"unknown server {kind!r}")
        self.kind = kind
        # later flags win: the benchmark's own, then --ours-args, override the raised limits
        self.extra_args = (
            [*OURS_LIMIT_ARGS, *extra_args, *Server.ours_args]
            if kind.startswith("ours")
            else list(extra_args)
        )
        self.port = 0
        #: What our server's clients present (a student's access token, signed with
        #: the secret in its data folder); None for the reference server, which wants none.
        self.token: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        #: Our server stores rooms: a scratch database on DATABASE_URL's server
        #: (dropped at stop), else an embedded Postgres in a scratch data folder.
        self._database: tuple[str, str] | None = None
        self._data_dir: tempfile.TemporaryDirectory[str] | None = None
        #: Extra environment (e.g. REDIS_URL for a node of several; None unsets), and a database
        #: the caller owns (several nodes share it): used as is, never created or dropped.
        self.extra_env = dict(env or {})
        self.database_url = database_url
        self._log = tempfile.NamedTemporaryFile(
            prefix=f"bench-{kind}-", suffix=".log", delete=False
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def label(self) -> str:
        return self.kind

    def start(self, timeout: float = 30.0) -> Server:
        self.port = free_port()
        if self.kind.startswith("ours"):
            entry = (
                [str(BENCH / "memlog_server.py")]
                if self.kind == "ours-memlog"
                else ["-m", "server.cli", "serve"]
            )
            cmd = [
                sys.executable,
                *entry,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *self.extra_args,
            ]
            env = dict(os.environ)
            for k, v in self.extra_env.items():  # None: unset
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
            # a scratch data folder: the auth secret (and any embedded Postgres) stay in it
            self._data_dir = tempfile.TemporaryDirectory(prefix="bench-data-")
            cmd += ["--data-dir", self._data_dir.name]
            self.token = mint_token(Path(self._data_dir.name))
        if self.kind == "ours" and self.database_url:
            env["DATABASE_URL"] = self.database_url
        elif self.kind == "ours":
            admin = os.environ.get("DATABASE_URL")
            if admin:
                name = f"bench_{uuid.uuid4().hex[:12]}"
                _admin_sql(admin, f'CREATE DATABASE "{name}"')
                self._database = (admin, name)
                env["DATABASE_URL"] = _with_database(admin, name)
        elif self.kind == "reference":
            if not REFERENCE_SERVER.exists():
                raise SystemExit(
                    f"reference server missing: run `npm ci` (or `npm install`) in {BENCH}"
                )
            cmd = ["node", str(REFERENCE_SERVER)]
            env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port))
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} server exited ({self.proc.returncode}):\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.kind} server did not listen in {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        return self

    def log_tail(self, n: int = 4000) -> str:
        with open(self._log.name, "rb") as f:
            data = f.read()
        return data[-n:].decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._database is not None:
            admin, name = self._database
            self._database = None
            _admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self._data_dir is not None:
            self._data_dir.cleanup()
            self._data_dir = None

    def errors_in_log(self) -> str:
        """What the server printed besides its start line (both run quietly: warnings only)."""
        lines = self.log_tail().splitlines()
        return "\n".join(x for x in lines if x.strip() and not x.startswith("running at ")).strip()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if exc[0] is None:
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
        else:
            print(f"({self.kind} server log kept in {self._log.name})", file=sys.stderr)


class Cluster:
    """Several of our server processes sharing rooms through Redis, on one Postgres database.

    A scratch database (``bench_cluster_*``) is created on the ``admin_dsn``
    server and dropped at stop; the nodes use a Redis key/channel prefix of
    their own (``ocl-bench-<random>:``), whose keys are deleted at stop. Redis
    itself is never flushed, stopped or restarted. Nodes are started one after
    the other (the first one migrates the database) and stopped by PID.
    ``cpu()`` and ``rss_kib()`` add the nodes up, so a ``Meter`` can take it.
    """

    def __init__(
        self, count: int, redis_url: str, admin_dsn: str, extra_args: Iterable[str] = ()
    ) -> None:
        self.count = count
        self.redis_url = redis_url
        self.admin_dsn = admin_dsn
        self.extra_args = list(extra_args)
        self.prefix = f"ocl-bench-{uuid.uuid4().hex[:12]}:"
        self.nodes: list[Server] = []
        self._database: str | None = None

    def start(self) -> Cluster:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise SystemExit(f"no Redis at {self.redis_url}: {exc}") from exc
        finally:
            client.close()
        name = f"bench_cluster_{uuid.uuid4().hex[:12]}"
        _admin_sql(self.admin_dsn, f'CREATE DATABASE "{name}"')
        self._database = name
        env = {"REDIS_URL": self.redis_url, "OPENCODE_LIVE_BUS_PREFIX": self.prefix}
        dsn = _with_database(self.admin_dsn, name)
        for _ in range(self.count):
            node = Server("ours", self.extra_args, env=env, database_url=dsn)
            self.nodes.append(node)
            node.start()
        return self

    def cpu(self) -> float:
        return sum(n.cpu() for n in self.nodes)

    def rss_kib(self) -> int:
        return sum(n.rss_kib() for n in self.nodes)

    def errors_in_log(self) -> str:
        return "\n".join(
            f"[node {i}] {line}"
            for i, n in enumerate(self.nodes)
            for line in n.errors_in_log().splitlines()
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self._database is not None:
            name, self._database = self._database, None
            _admin_sql(self.admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._delete_keys()

    def _delete_keys(self) -> None:
        """Delete this cluster's keys (its prefix only; bounded)."""
        import itertools

        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
        try:
            keys = list(
                itertools.islice(client.scan_iter(match=f"{self.prefix}*", count=500), 100_000)
            )
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
        except (redis.RedisError, OSError) as exc:
            print(f"(could not delete Redis keys {self.prefix}*: {exc})", file=sys.stderr)
        finally:
            client.close()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
        for node in self.nodes:
            node.__exit__(*exc)


def mint_token(data_dir: Path) -> str:
    """A student's access token for the server whose data folder this is.

    The secret file is made here, before the server starts (it then uses it).
    All of a benchmark's clients are this one person, who owns the rooms they open.
    """
    from server.tokens import TokenVerifier, load_or_create_secret

    verifier = TokenVerifier(
        secret=load_or_create_secret(data_dir), issuer="opencode-live", audience="opencode-live"
    )
    return verifier.mint(name="Bench", role="student", user_id="bench", ttl_seconds=24 * 3600)


def auth_headers(token: str | None) -> dict[str, str]:
    """Headers for our server's HTTP API (none for the reference server)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class Meter:
    """CPU over one window: the server's (from /proc), the generator's own, and the rest.

    ``other`` is what every other process on the machine used meanwhile: this
    machine has 2 cores, so anything else running skews the figures, and the
    tables show it.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.t0 = time.monotonic()
        self.s0 = server.cpu()
        self.g0 = own_cpu_seconds()
        self.m0 = machine_busy_seconds()
        self.wall = self.server_cpu = self.gen_cpu = self.other_cpu = 0.0

    def stop(self) -> Meter:
        self.wall = time.monotonic() - self.t0
        self.server_cpu = self.server.cpu() - self.s0
        self.gen_cpu = own_cpu_seconds() - self.g0
        busy = machine_busy_seconds() - self.m0
        self.other_cpu = max(0.0, busy - self.server_cpu - self.gen_cpu)
        return self

    @property
    def other_pct(self) -> float:
        return 100.0 * self.other_cpu / self.wall if self.wall else 0.0

    @property
    def server_pct(self) -> float:
        return 100.0 * self.server_cpu / self.wall if self.wall else 0.0

    @property
    def gen_pct(self) -> float:
        return 100.0 * self.gen_cpu / self.wall if self.wall else 0.0


# --------------------------------------------------------------------------- Yjs bits


def var_uint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def new_client_id() -> int:
    return random.getrandbits(32)


class TextWriter:
    """Makes the Yjs updates of one client typing at the end of its own text.

    The first update (the item that hangs off the root ``Y.Text``) comes from
    pycrdt; every later one appends right after this client's previous item, so
    it is a single struct with that item as its origin. Those are built by hand
    (``info`` 0x84 = has-origin | ContentString): exactly the bytes Yjs writes
    for such an insert, at a cost of a microsecond instead of pycrdt's ~50.
    ``selftest()`` checks them against pycrdt.
    """

    __slots__ = ("_prefix", "client_id", "clock")

    def __init__(self, client_id: int | None = None) -> None:
        self.client_id = new_client_id() if client_id is None else client_id
        self.clock = 0
        self._prefix = b"\x01\x01" + var_uint(self.client_id)

    def first(self, text: str = ".") -> bytes:
        doc = Doc(client_id=self.client_id)
        doc.get(TEXT_NAME, type=Text).insert(0, text)
        self.clock = len(text.encode("utf-16-le")) // 2
        return doc.get_update()

    def append(self, text: bytes) -> bytes:
        """An ASCII insert after this client's last character (``first`` must come first)."""
        clock = self.clock
        self.clock = clock + len(text)
        cid = self._prefix[2:]
        return (
            self._prefix
            + var_uint(clock)
            + b"\x84"
            + cid
            + var_uint(clock - 1)
            + var_uint(len(text))
            + text
            + b"\x00"
        )


def selftest() -> None:
    w = TextWriter()
    doc = Doc()
    doc.apply_update(w.first("x"))
    expected = "x"
    for i in range(300):
        piece = f"@{time.monotonic_ns()}#{i}".encode()
        doc.apply_update(w.append(piece))
        expected += piece.decode()
    assert str(doc.get(TEXT_NAME, type=Text)) == expected, "hand-made updates disagree with pycrdt"


def awareness_state(client_id: int, name: str) -> bytes:
    state = json.dumps({"user": {"name": name, "color": "#30bced"}, "cursor": None})
    return awareness_message(encode_awareness_update([(client_id, 1, state)]))


STAMP = re.compile(rb"@(\d{6,20})#")
EMPTY_STEP2 = sync_step2(b"\x00\x00")
EMPTY_STEP1 = sync_step1(b"\x00")


# --------------------------------------------------------------------------- WebSocket client


class HandshakeError(Exception):
    pass


class WSClient(asyncio.Protocol):
    """A minimal RFC 6455 client: masked frames out, unmasked frames in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._handshake = True
        self._hbuf = b""
        self._buf = bytearray()
        self._need = 0
        self._frag: bytearray | None = None
        self._request = b""
        self.close_code: int | None = None
        self.error: str | None = None
        #: Where runs of sync-update frames go, as (receive time ns, their bytes);
        #: None sends every frame to ``on_message``.
        self.sink: list[tuple[int, bytes]] | None = None
        #: A counter shared by a group of clients: sync updates received.
        self.counter: list[int] = [0]
        self.updates = 0

    # sending ------------------------------------------------------------------

    def send(self, payload: bytes, opcode: int = 2) -> None:
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
        key = random.getrandbits(32).to_bytes(4, "big")
        if n:
            mask = (key * ((n >> 2) + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(
                n, "big"
            )
        assert self.transport is not None
        self.transport.write(header + key + payload)

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.send(struct.pack("!H", code), opcode=8)
            self.transport.close()

    # asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(f"connection lost during handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)
        self.on_closed()

    def data_received(self, data: bytes) -> None:
        if self._handshake:
            data = self._hbuf + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._hbuf = data
                return
            status = data[: data.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self.error = status.decode("latin-1")
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(self.error))
                assert self.transport is not None
                self.transport.close()
                return
            self._handshake = False
            self._hbuf = b""
            data = data[end + 4 :]
            self.opened.set_result(None)
            self.on_open()
            if not data:
                return
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return
            data = bytes(buf)
            buf.clear()
        now = time.monotonic_ns()
        pos = 0
        need = 0
        n = len(data)
        sink = self.sink
        fast = sink is not None
        run = 0  # where the current run of update frames starts
        k = 0  # update frames in it
        while n - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1] & 0x7F
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (data[head] << 8) | data[head + 1]
                head += 2
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            end = head + length
            if end > n:
                need = end - pos
                break
            # The hot path: a y-websocket sync update (0, 2) in one binary frame is
            # only counted here; its run of frames is handed to the sink whole.
            if fast and b0 == 0x82 and length > 2 and data[head] == 0 and data[head + 1] == 2:
                k += 1
            else:
                if k:
                    sink.append((now, data[run:pos]))  # type: ignore[union-attr]
                    self.updates += k
                    self.counter[0] += k
                    k = 0
                if b0 == 0x82:  # FIN + binary
                    self.on_message(data[head:end], now)
                else:
                    self._control(b0, b0 & 0x0F, data[head:end], now)
                run = end
            pos = end
        if k:
            sink.append((now, data[run:pos]))  # type: ignore[union-attr]
            self.updates += k
            self.counter[0] += k
        if pos < n:
            buf += data[pos:]
        self._need = need

    def _control(self, b0: int, opcode: int, payload: bytes, now: int) -> None:
        fin = b0 & 0x80
        if opcode == 9:  # ping
            self.send(payload, opcode=10)
        elif opcode == 8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if self.transport is not None:
                self.transport.close()
        elif opcode in (1, 2):
            if fin:
                self.on_message(payload, now)
            else:
                self._frag = bytearray(payload)
        elif opcode == 0 and self._frag is not None:
            self._frag += payload
            if fin:
                whole, self._frag = bytes(self._frag), None
                self.on_message(whole, now)

    # hooks -------------------------------------------------------------------------

    def on_open(self) -> None:
        pass

    def on_message(self, payload: bytes, now: int) -> None:
        pass

    def on_closed(self) -> None:
        pass


async def open_ws(
    factory: Callable[[], WSClient],
    port: int,
    path: str,
    timeout: float = 30.0,
    *,
    token: str | None = None,
) -> WSClient:
    """Open a socket; with ``token`` (our server's ``Server.token``) it signs in with it."""
    loop = asyncio.get_running_loop()
    proto = factory()
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    proto._request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\n{auth}Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    await asyncio.wait_for(loop.create_connection(lambda: proto, "127.0.0.1", port), timeout)
    await asyncio.wait_for(asyncio.shield(proto.opened), timeout)
    return proto


# --------------------------------------------------------------------------- y-websocket peers


class Peer(WSClient):
    """A y-websocket client that keeps no document (the cheap subscriber).

    On open it sends sync step 1 (an empty state vector) and, if it has one,
    its awareness state, as y-websocket's WebsocketProvider does; it answers
    the server's step 1 with an empty step 2. Sync updates are counted in
    ``counter`` and stored raw, with their receive time, in ``sink``: their
    ``@ns#`` stamps are read after the measurement (``latencies``), so the
    receive path stays a few bytecodes per message.
    """

    def __init__(
        self,
        sink: list[tuple[int, bytes]] | None = None,
        counter: list[int] | None = None,
        awareness: bytes | None = None,
    ) -> None:
        super().__init__()
        self.sink = sink
        if counter is not None:
            self.counter = counter
        self.awareness = awareness
        self.synced: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.awareness_in = 0
        self.other_in = 0

    def on_open(self) -> None:
        self.send(EMPTY_STEP1)
        if self.awareness is not None:
            self.send(self.awareness)

    def on_message(self, payload: bytes, now: int) -> None:
        if payload[0] == 0:
            sub = payload[1]
            if sub == 2:
                self.updates += 1
                self.counter[0] += 1
                if self.sink is not None:
                    self.sink.append((now, payload))
                return
            if sub == 0:
                self.send(self.step2_for(payload))
                return
            if sub == 1:
                self.on_step2(payload, now)
                return
        elif payload[0] == 1:
            self.awareness_in += 1
            return
        self.other_in += 1

    def step2_for(self, step1: bytes) -> bytes:
        return EMPTY_STEP2

    def on_step2(self, payload: bytes, now: int) -> None:
        if not self.synced.done():
            self.synced.set_result(now / 1e9)

    def on_closed(self) -> None:
        if not self.synced.done():
            self.synced.set_exception(
                ConnectionError(f"closed before sync (code {self.close_code}, {self.error})")
            )


class DocPeer(Peer):
    """A client that applies everything it receives to a real pycrdt Doc."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.doc = Doc()
        self.text = self.doc.get(TEXT_NAME, type=Text)
        self._sink = self.sink
        self.sink = None  # every frame goes through on_message

    def on_message(self, payload: bytes, now: int) -> None:
        if payload[0] == 0 and payload[1] == 2:
            self.doc.apply_update(self._payload(payload))
            if self._sink is not None:
                self._sink.append((now, payload))
            self.updates += 1
            self.counter[0] += 1
            return
        super().on_message(payload, now)

    def on_open(self) -> None:
        self.send(sync_step1(self.doc.get_state()))
        if self.awareness is not None:
            self.send(self.awareness)

    def step2_for(self, step1: bytes) -> bytes:
        _, pos = read_var_uint(step1, 2)
        return sync_step2(self.doc.get_update(step1[pos:]))

    def _payload(self, message: bytes) -> bytes:
        length, pos = read_var_uint(message, 2)
        return message[pos : pos + length]

    def on_step2(self, payload: bytes, now: int) -> None:
        self.doc.apply_update(self._payload(payload))
        super().on_step2(payload, now)


async def connect_many(
    factories: list[Callable[[], WSClient]],
    port: int,
    paths: list[str],
    concurrency: int = 64,
    timeout: float = 60.0,
    *,
    token: str | None = None,
) -> tuple[list[WSClient], list[str]]:
    """Open many sockets, ``concurrency`` handshakes at a time; returns (clients, errors)."""
    sem = asyncio.Semaphore(concurrency)
    clients: list[WSClient | None] = [None] * len(factories)
    errors: list[str] = []

    async def one(i: int) -> None:
        async with sem:
            try:
                clients[i] = await open_ws(factories[i], port, paths[i], timeout, token=token)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(i) for i in range(len(factories))))
    return [c for c in clients if c is not None], errors


async def wait_synced(peers: list[Peer], timeout: float) -> tuple[int, list[str]]:
    done, pending = await asyncio.wait([p.synced for p in peers], timeout=timeout)
    errors = [str(f.exception()) for f in done if f.exception() is not None]
    return len(done) - len(errors), errors + [f"{len(pending)} not synced in {timeout}s"] * bool(
        pending
    )


async def poll_until(done: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``done`` until true or ``timeout``; the clients' hot path stays free of events."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def close_all(clients: list[WSClient], wait: float = 2.0) -> None:
    for c in clients:
        c.close()
    if clients:
        await asyncio.wait([c.closed for c in clients], timeout=wait)


# --------------------------------------------------------------------------- figures


def latencies(sink: list[tuple[int, bytes]], since: int = 0) -> array:
    """Receive time minus send stamp (ns) of every stamp in ``sink`` sent at ``since`` or later."""
    out = array("q")
    findall = STAMP.findall
    for now, chunk in sink:
        for stamp in findall(chunk):
            sent = int(stamp)
            if sent >= since:
                out.append(now - sent)
    return out


@dataclass
class LatencyStats:
    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, ns: array | list[int]) -> LatencyStats:
        if not ns:
            return cls(0, float("nan"), float("nan"), float("nan"))
        s = sorted(ns)
        n = len(s)

        def pct(p: float) -> float:
            return s[min(n - 1, int(p * n))] / 1e6

        return cls(n, pct(0.50), pct(0.99), s[-1] / 1e6)


def fmt_ms(v: float) -> str:
    if v != v:
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def table(headers: list[str], rows: list[list[Any]], title: str = "") -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(h.rjust(w) for h, w in zip(cells[0], widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


@dataclass
class Results:
    bench: str
    data: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps({"bench": self.bench, **self.data}, indent=1))


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--server",
        default="both",
        help="ours, reference, both, ours-memlog (ours with its log in memory), "
        "or a comma-separated list",
    )
    p.add_argument("--json", help="also write the figures to this file (run_all.py reads it)")
    p.add_argument(
        "--ours-args",
        default="",
        metavar="FLAGS",
        help='extra flags for our server, e.g. --ours-args="--heartbeat-seconds 0"',
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each server's run, wait up to this long for other processes to go quiet",
    )
    return p


def server_logs(results: dict[str, dict]) -> list[str]:
    """For a report: what each server printed besides its start line, if anything."""
    return [
        f"{kind} server printed:\n{r['server_log'][-1500:]}"
        for kind, r in results.items()
        if r.get("server_log")
    ]


def servers_of(choice: str) -> list[str]:
    if choice == "both":
        return list(SERVERS)
    kinds = [k.strip() for k in choice.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in SERVERS + EXTRA_SERVERS]
    if unknown:
        raise SystemExit(f"unknown --server {', '.join(unknown)}")
    return kinds


def parse_args(p: argparse.ArgumentParser) -> argparse.Namespace:
    args = p.parse_args()
    Server.ours_args = shlex.split(args.ours_args)
    return args


def other_load_pct(seconds: float = 1.0) -> float:
    """CPU% (of one core) that processes other than this one use right now."""
    m0, g0, t0 = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    busy = machine_busy_seconds() - m0 - (own_cpu_seconds() - g0)
    return 100.0 * max(0.0, busy) / (time.monotonic() - t0)


QUIET_PCT = 15.0
#: Seconds one benchmark process may spend in all waiting for a quiet machine.
_wait_budget = [60.0]


def wait_quiet(limit_pct: float = QUIET_PCT, max_wait: float = 60.0) -> float:
    """Wait (bounded, and within a budget per process) until other processes use
    under ``limit_pct`` of a core. Returns the last reading.
    """
    t0 = time.monotonic()
    deadline = t0 + min(max_wait, _wait_budget[0])
    load = other_load_pct(0.5)
    while load > limit_pct and time.monotonic() < deadline:
        print(f"  (machine busy: other processes use {load:.0f}% of a core; waiting)", flush=True)
        load = other_load_pct(2.0)
    _wait_budget[0] = max(0.0, _wait_budget[0] - (time.monotonic() - t0))
    return load


def run(coro: Any) -> Any:
    import uvloop

    selftest()
    return uvloop.run(coro)
