"""The Docker Engine, through the ``docker`` SDK: blocking calls, run in a thread pool.

Every method here blocks; ``Engine.call`` runs one in the engine's own
threads so the event loop never waits on Docker.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Ulimit

from .cgroups import Cgroup
from .job import Limits

T = TypeVar("T")

LABEL = "org.opencode-live.executor"
LABEL_INSTANCE = LABEL + ".instance"
LABEL_HOST = LABEL + ".host"
LABEL_PROCESS = LABEL + ".process"
#: The container's own processes (tini, sleep) run as nobody; runs as the image's runner.
CONTAINER_USER = "65534:65534"
RUNNER_USER = "10001"
WORKDIR = "/work"
#: The whole environment a program sees, besides its language's variables.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "LANG": "C.UTF-8"}
API_TIMEOUT = 60
PING_TIMEOUT = 5


@dataclass(frozen=True, slots=True)
class Shape:
    """What a container is made with; a run needs a container of its own shape."""

    image: str
    cpus: float
    memory_bytes: int
    disk_bytes: int
    pids: int

    @classmethod
    def of(cls, image: str, limits: Limits, max_cpus: float | None = None) -> Shape:
        cpus = limits.cpus if max_cpus is None else min(limits.cpus, max_cpus)
        return cls(image, cpus, limits.memory_bytes, limits.disk_bytes, limits.pids)

    @property
    def work_bytes(self) -> int:
        """/work's share of ``disk_bytes`` (/tmp has 3/8, /dev/shm the rest)."""
        return self.disk_bytes // 2

    def tmpfs(self) -> dict[str, str]:
        work = self.work_bytes
        tmp = self.disk_bytes * 3 // 8
        shm = max(self.disk_bytes - work - tmp, 1024 * 1024)
        return {
            "/work": f"rw,exec,nosuid,nodev,size={work},mode=1777",
            "/tmp": f"rw,exec,nosuid,nodev,size={tmp},mode=1777",
            "/dev/shm": f"rw,noexec,nosuid,nodev,size={shm},mode=1777",
        }


class EngineDown(Exception):
    """The engine does not answer; the message says why, for a person."""


def is_engine_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the engine is unreachable (not: it refused one request)."""
    if isinstance(exc, EngineDown):
        return True
    if isinstance(exc, docker.errors.APIError):
        return False
    return isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            ConnectionError,
            FileNotFoundError,
            TimeoutError,
            docker.errors.DockerException,
        ),
    )


def describe(exc: BaseException, where: str = "") -> str:
    """One readable line for an engine error."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        if isinstance(e, FileNotFoundError) or "No such file or directory" in text:
            return f"the Docker Engine socket {where} does not exist (is dockerd running?)"
        if isinstance(e, ConnectionRefusedError) or "Connection refused" in text:
            return f"the Docker Engine at {where} refuses connections (is dockerd running?)"
        if isinstance(e, PermissionError) or "Permission denied" in text:
            return f"no permission to use the Docker Engine at {where}"
        if isinstance(e, TimeoutError | requests.exceptions.Timeout | socket.timeout):
            return f"the Docker Engine at {where} does not answer (timed out)"
        e = e.__cause__ or e.__context__
        if e is None and exc.args and isinstance(exc.args[0], BaseException):
            e = exc.args[0]
    if isinstance(exc, docker.errors.APIError):
        text = exc.explanation or str(exc)
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if len(text) > 200:
        text = text[:199] + "…"
    return f"the Docker Engine at {where}: {text}" if where else text


class Engine:
    def __init__(
        self, docker_host: str | None, threads: int = 32, cpuset_cpus: str | None = None
    ) -> None:
        self.host = docker_host
        #: Host CPUs every new container is pinned to (Docker's ``cpuset_cpus``, e.g. "0" or
        #: "0-1"); None: any CPU, within ``Shape.cpus`` (``ExecutorConfig.cpuset_cpus``).
        self.cpuset_cpus = cpuset_cpus
        self.where = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self._threads = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="executor-docker"
        )
        self._client: docker.DockerClient | None = None
        self._ping_client: docker.DockerClient | None = None
        self.ncpu: float | None = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(fn, *args, **kwargs))

    @property
    def api(self) -> docker.APIClient:
        if self._client is None:
            raise EngineDown(f"not connected to the Docker Engine at {self.where}")
        return self._client.api

    def _make_client(self, timeout: int, pool: int) -> docker.DockerClient:
        kwargs: dict[str, Any] = {"version": "auto", "timeout": timeout, "max_pool_size": pool}
        if self.host:
            return docker.DockerClient(base_url=self.host, **kwargs)
        return docker.from_env(**kwargs)

    def connect(self) -> None:
        """(Re)connect and ping; raises ``EngineDown`` with a readable reason."""
        ping = client = None
        try:
            ping = self._make_client(PING_TIMEOUT, 2)
            ping.ping()
            client = self._make_client(API_TIMEOUT, 96)
            info = client.info()
        except Exception as exc:
            for c in (ping, client):
                if c is not None:
                    c.close()
            raise EngineDown(describe(exc, self.where)) from exc
        old = (self._client, self._ping_client)
        self._client, self._ping_client = client, ping
        self.ncpu = float(info.get("NCPU") or 0) or None
        for c in old:
            if c is not None:
                c.close()

    def ping(self) -> None:
        if self._ping_client is None:
            raise EngineDown(f"not connected to the Docker Engine at {self.where}")
        try:
            self._ping_client.ping()
        except Exception as exc:
            raise EngineDown(describe(exc, self.where)) from exc

    def image_present(self, image: str) -> bool:
        try:
            self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    def create(self, shape: Shape, name: str, labels: dict[str, str]) -> tuple[str, Cgroup | None]:
        """Create and start a sandbox container; its id and (if reachable) its cgroup."""
        api = self.api
        host_config = api.create_host_config(
            init=True,
            read_only=True,
            tmpfs=shape.tmpfs(),
            mem_limit=shape.memory_bytes,
            memswap_limit=shape.memory_bytes,
            nano_cpus=int(shape.cpus * 1e9),
            cpuset_cpus=self.cpuset_cpus,
            pids_limit=shape.pids,
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            log_config=LogConfig(type="none", config={}),
            ulimits=[
                Ulimit(name="nofile", soft=1024, hard=1024),
                Ulimit(name="core", soft=0, hard=0),
            ],
            ipc_mode="private",
        )
        created = api.create_container(
            image=shape.image,
            command=["sleep", "infinity"],
            user=CONTAINER_USER,
            working_dir=WORKDIR,
            environment=[f"{k}={v}" for k, v in BASE_ENV.items()],
            hostname="sandbox",
            labels=labels,
            host_config=host_config,
            name=name,
            network_disabled=True,
        )
        cid = created["Id"]
        try:
            api.start(cid)
            pid = int(api.inspect_container(cid)["State"].get("Pid") or 0)
        except BaseException:
            self.remove(cid)
            raise
        return cid, Cgroup.find(pid, cid)

    def start_agent(self, cid: str, source: str) -> tuple[socket.socket, Any]:
        """Start the agent with one exec; the hijacked socket, and what must stay alive with it."""
        api = self.api
        ex = api.exec_create(
            cid,
            ["python3", "-I", "-S", "-c", source],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            user=RUNNER_USER,
            workdir=WORKDIR,
        )
        raw = api.exec_start(ex["Id"], socket=True)
        sock = raw._sock if isinstance(raw, socket.SocketIO) else raw
        if isinstance(sock, ssl.SSLSocket) or not isinstance(sock, socket.socket):
            return sock, raw  # TLS (or other): use it as it is and keep the response alive
        # Our own descriptor: the SDK's objects may close theirs when collected.
        mine = sock.dup()
        mine.settimeout(None)
        return mine, None

    def remove(self, cid: str) -> None:
        try:
            self.api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "is already in progress" not in str(exc):
                raise

    def list_labeled(self) -> list[dict[str, Any]]:
        return self.api.containers(all=True, filters={"label": LABEL})

    def close(self) -> None:
        for c in (self._client, self._ping_client):
            if c is not None:
                c.close()
        self._client = self._ping_client = None

    def shutdown(self) -> None:
        self.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
