"""One typed settings object: CLI flag, then environment variable, then default.

Each field's metadata names its environment variable and help text; the CLI
flags and the README's settings table are both made from it, so a setting
cannot be added without being documented.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor import ExecutorConfig, Limits
from rooms import RoomLimits

from .ratelimit import SocketRates
from .tokens import TokenVerifier, load_or_create_secret

MiB = 1024 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")


def _setting(default: Any, env: str, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = _setting("127.0.0.1", "OPENCODE_LIVE_HOST", "address to listen on")
    port: int = _setting(8000, "PORT", "TCP port to listen on (0 picks a free one)")
    public_url: str = _setting(
        "",
        "OPENCODE_LIVE_PUBLIC_URL",
        "the server's address as people reach it (e.g. https://class.example.org): the issuer "
        "and ids of exported badges; empty: the address each request came to",
    )
    log_level: str = _setting("info", "OPENCODE_LIVE_LOG_LEVEL", "debug, info, warning or error")
    max_message_bytes: int = _setting(
        16 * MiB,
        "OPENCODE_LIVE_MAX_MESSAGE_BYTES",
        "largest WebSocket message accepted (bigger closes with 1009); also the largest "
        "piece a big document's initial sync is cut into",
    )
    send_queue_bytes: int = _setting(
        64 * MiB,
        "OPENCODE_LIVE_SEND_QUEUE_BYTES",
        "bytes queued for one client before it is closed as a slow consumer (1013); "
        "at least twice max-message-bytes",
    )
    max_connections_per_room: int = _setting(
        1000, "OPENCODE_LIVE_MAX_CONNECTIONS_PER_ROOM", "connections one room accepts (then 1013)"
    )
    max_rooms: int = _setting(
        10_000, "OPENCODE_LIVE_MAX_ROOMS", "rooms one process holds in memory (then 1013)"
    )
    unload_grace_seconds: float = _setting(
        30.0,
        "OPENCODE_LIVE_UNLOAD_GRACE_SECONDS",
        "seconds a room stays loaded after its last connection leaves",
    )
    awareness_timeout_seconds: float = _setting(
        30.0,
        "OPENCODE_LIVE_AWARENESS_TIMEOUT_SECONDS",
        "seconds without renewal after which a client's presence is dropped",
    )
    heartbeat_seconds: float = _setting(
        30.0,
        "OPENCODE_LIVE_HEARTBEAT_SECONDS",
        "WebSocket ping interval (0: no pings); a client silent for two intervals is dropped",
    )
    shutdown_timeout_seconds: float = _setting(
        10.0,
        "OPENCODE_LIVE_SHUTDOWN_TIMEOUT_SECONDS",
        "seconds SIGTERM waits for queued frames to reach clients before closing",
    )
    database_url: str = _setting(
        "",
        "DATABASE_URL",
        "Postgres to store rooms in; empty: an embedded Postgres in the data folder",
    )
    redis_url: str = _setting(
        "",
        "REDIS_URL",
        "Redis shared by the nodes (e.g. redis://host:6379/0); empty: none (one process)",
    )
    data_dir: str = _setting(
        "",
        "OPENCODE_LIVE_DATA_DIR",
        "data folder; empty: $XDG_DATA_HOME/opencode-live (~/.local/share/opencode-live), "
        "or /var/lib/opencode-live when run as root",
    )
    compact_after_updates: int = _setting(
        1000,
        "OPENCODE_LIVE_COMPACT_AFTER_UPDATES",
        "fold a room's log into a snapshot once this many updates follow the last one",
    )
    compact_after_bytes: int = _setting(
        4 * MiB,
        "OPENCODE_LIVE_COMPACT_AFTER_BYTES",
        "... or once the updates after the last snapshot reach this many bytes",
    )
    commit_delay_seconds: float = _setting(
        0.0,
        "OPENCODE_LIVE_COMMIT_DELAY_SECONDS",
        "extra time a group commit waits to gather updates (0: commit at once; updates "
        "arriving during a commit form the next batch)",
    )

    bus_prefix: str = _setting(
        "ocl:bus:",
        "OPENCODE_LIVE_BUS_PREFIX",
        "with REDIS_URL: prefix of the room bus's Redis channels (deployments sharing one "
        "Redis use different ones)",
    )
    bus_check_seconds: float = _setting(
        5.0,
        "OPENCODE_LIVE_BUS_CHECK_SECONDS",
        "with REDIS_URL: how often a node compares the rooms it holds with the stored log, "
        "to catch up on updates whose bus messages were lost (0: only on gaps and reconnects)",
    )

    auth_secret: str = _setting(
        "",
        "OPENCODE_LIVE_AUTH_SECRET",
        "shared secret (HS256) for tokens; empty: the auth-secret file in the data folder, "
        "created on first start (ignored when a JWKS URL is set)",
    )
    auth_jwks_url: str = _setting(
        "",
        "OPENCODE_LIVE_AUTH_JWKS_URL",
        "identity provider's key set (RS256/ES256); tokens are then checked against it",
    )
    auth_issuer: str = _setting("opencode-live", "OPENCODE_LIVE_AUTH_ISSUER", "expected iss")
    auth_audience: str = _setting("opencode-live", "OPENCODE_LIVE_AUTH_AUDIENCE", "expected aud")
    auth_leeway_seconds: float = _setting(
        30.0,
        "OPENCODE_LIVE_AUTH_LEEWAY_SECONDS",
        "clock skew tolerated on a token's times; a room socket closes (4401) this long "
        "after its token's exp",
    )
    api_requests_per_hour: int = _setting(
        1000,
        "OPENCODE_LIVE_API_REQUESTS_PER_HOUR",
        "HTTP API requests one user may make per hour (then 429 with Retry-After)",
    )
    runs_per_hour: int = _setting(
        50, "OPENCODE_LIVE_RUNS_PER_HOUR", "code runs one user may start per hour (then 429)"
    )
    docker_host: str = _setting(
        "",
        "DOCKER_HOST",
        "Docker Engine that runs code; empty: the local engine. Without one the server "
        "still starts and runs say why they are off",
    )
    run_image: str = _setting(
        "opencode-live/runner:1",
        "OPENCODE_LIVE_RUN_IMAGE",
        "image runs use (built offline by executor/images/build.sh; point at your own)",
    )
    run_pool_warm: int = _setting(
        4, "OPENCODE_LIVE_RUN_POOL_WARM", "containers kept started ahead of need"
    )
    run_pool_max: int = _setting(
        64, "OPENCODE_LIVE_RUN_POOL_MAX", "containers at most (warm, running and kept per user)"
    )
    runs_per_container: int = _setting(
        50,
        "OPENCODE_LIVE_RUNS_PER_CONTAINER",
        "runs one container serves (always for one user) before it is replaced",
    )
    run_cpus: float = _setting(1.0, "OPENCODE_LIVE_RUN_CPUS", "CPUs one run may use")
    run_memory_mb: int = _setting(
        512, "OPENCODE_LIVE_RUN_MEMORY_MB", "memory of one run in MB (no swap beyond it)"
    )
    run_disk_mb: int = _setting(
        100, "OPENCODE_LIVE_RUN_DISK_MB", "writable space of one run in MB (workspace, /tmp)"
    )
    run_wall_seconds: float = _setting(
        30.0, "OPENCODE_LIVE_RUN_WALL_SECONDS", "seconds a run may take (then: timeout)"
    )
    run_pids: int = _setting(
        128, "OPENCODE_LIVE_RUN_PIDS", "processes and threads one run may have (cgroup pids)"
    )
    run_output_bytes: int = _setting(
        1 * MiB,
        "OPENCODE_LIVE_RUN_OUTPUT_BYTES",
        "output kept and streamed per run; past it the program is stopped (output-limit)",
    )
    run_queue: str = _setting(
        "local",
        "OPENCODE_LIVE_RUN_QUEUE",
        "where runs go: local (this process's Docker Engine) or redis (a job queue on "
        "REDIS_URL served by `opencode-live worker` processes; this node then needs no Docker)",
    )
    run_queue_prefix: str = _setting(
        "ocl:runs:", "OPENCODE_LIVE_RUN_QUEUE_PREFIX", "prefix of the run queue's Redis keys"
    )
    run_queue_wait_seconds: float = _setting(
        30.0,
        "OPENCODE_LIVE_RUN_QUEUE_WAIT_SECONDS",
        "seconds a queued run waits for a worker to start it (then it fails, saying so)",
    )
    worker_metrics_port: int = _setting(
        0,
        "OPENCODE_LIVE_WORKER_METRICS_PORT",
        "port where `opencode-live worker` serves Prometheus metrics (0: none)",
    )
    socket_messages_per_second: float = _setting(
        100.0,
        "OPENCODE_LIVE_SOCKET_MESSAGES_PER_SECOND",
        "messages per second one room socket may send on average (over it: closed with 4429)",
    )
    socket_message_burst: int = _setting(
        1000,
        "OPENCODE_LIVE_SOCKET_MESSAGE_BURST",
        "messages a room socket may send at once above that average",
    )
    socket_bytes_per_second: int = _setting(
        4 * MiB,
        "OPENCODE_LIVE_SOCKET_BYTES_PER_SECOND",
        "bytes per second one room socket may send on average; a burst of twice "
        "max-message-bytes is allowed (over it: closed with 4429)",
    )

    def token_verifier(self) -> TokenVerifier:
        """The verifier of the configured mode (the secret file is created if needed)."""
        if self.auth_jwks_url:
            return TokenVerifier(
                jwks_url=self.auth_jwks_url,
                issuer=self.auth_issuer,
                audience=self.auth_audience,
                leeway_seconds=self.auth_leeway_seconds,
            )
        secret = self.auth_secret or load_or_create_secret(self.resolved_data_dir())
        return TokenVerifier(
            secret=secret,
            issuer=self.auth_issuer,
            audience=self.auth_audience,
            leeway_seconds=self.auth_leeway_seconds,
        )

    def run_limits(self) -> Limits:
        return Limits(
            cpus=self.run_cpus,
            memory_bytes=self.run_memory_mb * MiB,
            disk_bytes=self.run_disk_mb * MiB,
            wall_seconds=self.run_wall_seconds,
            pids=self.run_pids,
            output_bytes=self.run_output_bytes,
        )

    def executor_config(self) -> ExecutorConfig:
        return ExecutorConfig(
            image=self.run_image,
            docker_host=self.docker_host or None,
            warm=self.run_pool_warm,
            max_containers=self.run_pool_max,
            runs_per_container=self.runs_per_container,
            limits=self.run_limits(),
        )

    def socket_rates(self) -> SocketRates:
        return SocketRates(
            messages_per_second=self.socket_messages_per_second,
            message_burst=self.socket_message_burst,
            bytes_per_second=self.socket_bytes_per_second,
            byte_burst=max(2 * self.max_message_bytes, self.socket_bytes_per_second),
        )

    def resolved_data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        if os.geteuid() == 0:
            return Path("/var/lib/opencode-live")
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "opencode-live"

    def room_limits(self) -> RoomLimits:
        return RoomLimits(
            max_message_bytes=self.max_message_bytes,
            send_queue_bytes=self.send_queue_bytes,
            max_connections_per_room=self.max_connections_per_room,
            max_rooms=self.max_rooms,
            unload_grace_seconds=self.unload_grace_seconds,
            awareness_timeout_seconds=self.awareness_timeout_seconds,
            compact_after_updates=self.compact_after_updates,
            compact_after_bytes=self.compact_after_bytes,
        )

    def __post_init__(self) -> None:
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
        if self.bus_check_seconds < 0:
            raise ValueError("bus check seconds must be 0 (off) or more")
        if self.redis_url and not re.match(r"(redis|rediss|unix)://", self.redis_url):
            raise ValueError(
                f"redis url must start with redis://, rediss:// or unix://, not {self.redis_url!r}"
            )
        if self.heartbeat_seconds < 0:
            raise ValueError("heartbeat seconds must be 0 (off) or more")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.public_url and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", self.public_url):
            raise ValueError(
                f"public url {self.public_url!r} must be an http(s) address such as "
                "https://class.example.org"
            )
        self.room_limits()  # checks the limits against each other
        if self.auth_leeway_seconds < 0:
            raise ValueError("auth leeway seconds must be 0 or more")
        if self.api_requests_per_hour < 1 or self.runs_per_hour < 1:
            raise ValueError("hourly limits must allow at least one request")
        if (
            self.socket_messages_per_second <= 0
            or self.socket_message_burst < 1
            or self.socket_bytes_per_second <= 0
        ):
            raise ValueError("socket rate limits must be positive")
        if self.run_pool_warm < 0 or self.run_pool_max < max(1, self.run_pool_warm):
            raise ValueError("the run pool needs max >= warm >= 0 and max >= 1")
        if self.run_queue not in ("local", "redis"):
            raise ValueError(f"run queue must be local or redis, not {self.run_queue!r}")
        if self.run_queue == "redis" and not self.redis_url:
            raise ValueError("run queue redis needs a Redis: set REDIS_URL (or --redis-url)")
        if self.run_queue_wait_seconds <= 0:
            raise ValueError("run queue wait seconds must be positive")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(Settings):
        parser.add_argument(
            _flag(f.name),
            dest=f.name,
            type=type(f.default),
            default=None,
            help=f"{f.metadata['help']} (env {f.metadata['env']}, default {f.default})",
        )


def load_settings(
    args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from parsed flags and the environment; bad values raise ValueError."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
            continue
        raw = env.get(f.metadata["env"])
        if raw is not None and raw != "":
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(
                    f"{f.metadata['env']}={raw!r} is not a valid {kind.__name__}"
                ) from exc
    return Settings(**values)


def settings_table() -> str:
    """The README's table of settings, in Markdown."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        rows.append(
            f"| `{_flag(f.name)}` | `{f.metadata['env']}` | `{f.default}` | {f.metadata['help']} |"
        )
    return "\n".join(rows)
