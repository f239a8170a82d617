"""The executor's settings (the server fills them from its own)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .job import Limits


@dataclass(frozen=True)
class ExecutorConfig:
    image: str = "opencode-live/runner:1"
    #: None: the docker SDK's ``from_env()`` (``DOCKER_HOST``, else the local socket).
    docker_host: str | None = None
    #: Fresh containers kept started ahead of need.
    warm: int = 4
    #: All containers of this executor: warm + busy + kept for a user.
    max_containers: int = 64
    #: A container is destroyed after this many runs.
    runs_per_container: int = 50
    #: Largest ``OutputChunk``.
    chunk_bytes: int = 16384
    #: Limits of a job whose ``limits`` is left at ``Limits()``.
    limits: Limits = field(default_factory=Limits)
    #: Extra language spec files, besides the built-in ones (same name: replaces).
    languages_dir: Path | None = None
    #: A container kept for a user is destroyed after this long without a run.
    idle_seconds: float = 300.0
    #: Host CPUs every container is pinned to (Docker's cpuset, "0", "0-1", "0,2");
    #: None: any CPU. For workers sharing one host (``opencode-live worker --worker-cpuset``).
    cpuset_cpus: str | None = None

    def __post_init__(self) -> None:
        if self.max_containers < 1:
            raise ValueError("max_containers must be at least 1")
        if not 0 <= self.warm <= self.max_containers:
            raise ValueError("warm must be between 0 and max_containers")
        if self.runs_per_container < 1:
            raise ValueError("runs_per_container must be at least 1")
        if not 256 <= self.chunk_bytes <= 1024 * 1024:
            raise ValueError("chunk_bytes must be between 256 and 1 MiB")
        if self.idle_seconds <= 0:
            raise ValueError("idle_seconds must be positive")
