"""A container's cgroup, read from the host (cgroup v1 or v2).

Reachable when this process sees the engine's processes and /sys/fs/cgroup
(a local Docker Engine, and this process root or allowed to read it). Then a
run's CPU time is the diff of the container's CPU counter, its peak memory the
cgroup's high-water mark (reset before each run: writing to
``memory.max_usage_in_bytes`` on v1, ``memory.peak`` on v2 with kernel 6.12+),
OOM kills the ``oom_kill`` counter and pids-limit hits the ``max`` count of
``pids.events``. When it is not reachable the agent reports the same counters
from inside the container, and the peak is the largest process's RSS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class CgroupStats:
    cpu_ns: int | None
    peak_bytes: int | None
    oom_kills: int | None
    pids_max_hits: int | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _int(text: str | None, key: str | None = None) -> int | None:
    if text is None:
        return None
    try:
        if key is None:
            return int(text.split()[0])
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (ValueError, IndexError):
        return None
    return None


class Cgroup:
    def __init__(self, dirs: dict[str, Path], v2: bool) -> None:
        self._dirs = dirs
        self.v2 = v2
        #: Whether the last reset_peak() worked (else the peak spans earlier runs).
        self.peak_resettable = False

    @classmethod
    def find(cls, pid: int, container_id: str) -> Cgroup | None:
        """The cgroup of the container whose init has host pid ``pid``; None if unreachable."""
        if pid <= 0:
            return None
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        dirs: dict[str, Path] = {}
        unified: Path | None = None
        for line in lines:
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            _, controllers, path = parts
            if container_id not in path:
                continue  # another pid namespace's process, or not a container
            rel = path.lstrip("/")
            if controllers == "":
                unified = ROOT / rel
                continue
            for controller in controllers.split(","):
                for base in (ROOT / controller, ROOT / controllers):
                    if (base / rel).is_dir():
                        dirs[controller] = base / rel
                        break
        if "memory" in dirs and "cpuacct" in dirs:
            return cls(dirs, v2=False)
        if unified is not None and unified.is_dir() and not dirs:
            return cls({"unified": unified}, v2=True)
        return None

    def _path(self, controller: str, name: str) -> Path:
        return (self._dirs["unified"] if self.v2 else self._dirs[controller]) / name

    def reset_peak(self) -> None:
        path = self._path("memory", "memory.peak" if self.v2 else "memory.max_usage_in_bytes")
        try:
            with open(path, "w") as f:
                f.write("0")
            self.peak_resettable = True
        except OSError:
            self.peak_resettable = False

    def read(self) -> CgroupStats:
        if self.v2:
            usec = _int(_read(self._path("cpu", "cpu.stat")), "usage_usec")
            return CgroupStats(
                cpu_ns=usec * 1000 if usec is not None else None,
                peak_bytes=_int(_read(self._path("memory", "memory.peak"))),
                oom_kills=_int(_read(self._path("memory", "memory.events")), "oom_kill"),
                pids_max_hits=_int(_read(self._path("pids", "pids.events")), "max"),
            )
        pids = self._dirs.get("pids")
        return CgroupStats(
            cpu_ns=_int(_read(self._path("cpuacct", "cpuacct.usage"))),
            peak_bytes=_int(_read(self._path("memory", "memory.max_usage_in_bytes"))),
            oom_kills=_int(_read(self._path("memory", "memory.oom_control")), "oom_kill"),
            pids_max_hits=_int(_read(pids / "pids.events"), "max") if pids else None,
        )


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return stat.rsplit(")", 1)[1].split()[19]
    except IndexError:
        return None


def this_process_tag() -> str:
    return f"{os.getpid()}:{process_start_time(os.getpid()) or '?'}"


def process_alive(tag: str) -> bool:
    pid_text, _, start = tag.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now = process_start_time(pid)
    return now is not None and (start in ("", "?") or now == start)
