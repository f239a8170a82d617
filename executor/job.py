"""What a run is asked to do, and what it did: plain values, no Docker in sight.

The server builds a ``Job`` from a room's files (or an API request); the
executor answers with ``OutputChunk``s as the program prints and one
``Result`` at the end. Nothing here knows of rooms or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MiB = 1024 * 1024

Status = Literal["ok", "error", "timeout", "memory", "output-limit", "killed"]
Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-run limits (the seed's sandbox defaults); the server's settings fill them in."""

    cpus: float = 1.0
    memory_bytes: int = 512 * MiB
    #: Writable space: the workspace, /tmp and /dev/shm are tmpfs of this size in all.
    disk_bytes: int = 100 * MiB
    wall_seconds: float = 30.0
    #: A cgroup pids limit for the container (not ``ulimit -u``).
    pids: int = 128
    #: Output kept and streamed per run; past it the program is stopped.
    output_bytes: int = 1 * MiB


@dataclass(frozen=True, slots=True)
class Job:
    language: str
    #: Workspace files: relative POSIX path -> UTF-8 text.
    files: dict[str, str]
    #: The file to run; None: the language's default (e.g. ``main.py``).
    entry: str | None = None
    #: Text given on standard input at the start (more may be sent while it runs).
    stdin: str = ""
    #: Test files (pytest / ``node --test``); when given, the run grades instead of runs.
    tests: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class OutputChunk:
    stream: Stream
    #: At most the executor's chunk size; chunks of one run arrive in the order printed.
    data: bytes


@dataclass(frozen=True, slots=True)
class TestOutcome:
    name: str
    passed: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    exit_code: int | None
    #: The signal that ended the program (e.g. 9), if one did.
    signal: int | None
    wall_ms: float
    cpu_ms: float
    peak_memory_bytes: int
    #: Output past ``Limits.output_bytes`` was dropped (and the program stopped).
    output_truncated: bool = False
    #: One line a person can read: why it ended that way.
    message: str = ""
    #: For a graded run: each test's outcome, and passed / total.
    tests: list[TestOutcome] | None = None
    score: float | None = None


class ExecutorError(Exception):
    """Runs cannot be done right now (no engine, engine down, pool exhausted); says why."""


class JobError(ValueError):
    """A job that cannot run as asked (unknown language, bad path, too many files...)."""
