"""The run queue's Redis layout and wire format, shared by server (``remote.py``) and workers.

Everything lives under one key prefix (``Keys``), so several deployments (or
tests) share a Redis without meeting:

| key | type | written by | holds |
|---|---|---|---|
| ``<p>jobs`` | stream, group ``workers`` | server | one entry per run: ``job`` (JSON) |
| ``<p>run:<id>:events`` | stream | worker | ``started`` / ``refused``, output chunks, ``exit`` |
| ``<p>run:<id>:control`` | stream | server | ``input`` / ``eof`` / ``stop`` |
| ``<p>run:<id>:state`` | string | SET NX | ``started:<worker>`` or ``cancelled``: who won the job |
| ``<p>run:<id>:lease`` | string, PX | worker | the worker's name while it runs the job, renewed |
| ``<p>run:<id>:tries`` | counter | worker | deliveries that reached a worker (retry bound) |
| ``<p>workers`` | sorted set | worker | worker name -> last heartbeat (ms) |

Streams rather than pub/sub for the per-run channels: a reader that comes late
(or reconnects) reads from where it was, so no output is lost; every per-run key
expires (``RUN_TTL``) in case nobody is left to delete it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from .job import Job, Limits, Result, TestOutcome

GROUP = "workers"
#: Per-run keys expire this long after they are written (the server deletes them sooner).
RUN_TTL = 3600
#: A worker renews its heartbeat and leases this often ...
HEARTBEAT_SECONDS = 1.0
#: ... and a lease (and a pending job's idle time) this old means the worker is gone.
LEASE_SECONDS = 5.0

QUEUE_DEPTH = Gauge(
    "opencode_live_run_queue_depth",
    "Run jobs in the Redis queue: waiting for a worker, or taken and not yet acknowledged",
    ["state"],
)
RECLAIMED = Counter(
    "opencode_live_run_jobs_reclaimed_total",
    "Run jobs of a lost worker taken over: retried (never started), lost (reported failed), "
    "or dropped (already settled)",
    ["outcome"],
)
WORKER_JOBS = Counter(
    "opencode_live_worker_jobs_total",
    "Run jobs a worker finished, by outcome (the run's status, refused, lost)",
    ["outcome"],
)
LOST = Counter(
    "opencode_live_run_jobs_lost_total",
    "Runs the server ended itself: worker lost mid-run, or no worker took the job in time",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    @property
    def jobs(self) -> str:
        return f"{self.prefix}jobs"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    def events(self, run: str) -> str:
        return f"{self.prefix}run:{run}:events"

    def control(self, run: str) -> str:
        return f"{self.prefix}run:{run}:control"

    def state(self, run: str) -> str:
        return f"{self.prefix}run:{run}:state"

    def lease(self, run: str) -> str:
        return f"{self.prefix}run:{run}:lease"

    def tries(self, run: str) -> str:
        return f"{self.prefix}run:{run}:tries"

    def of_run(self, run: str) -> list[str]:
        return [
            self.events(run),
            self.control(run),
            self.state(run),
            self.lease(run),
            self.tries(run),
        ]


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """What goes on the jobs stream: the job, who it is for, and how stdin ends."""

    run: str
    job: Job
    owner: str
    close_stdin: bool
    enqueued_ms: int

    def encode(self) -> bytes:
        job = self.job
        return json.dumps(
            {
                "run": self.run,
                "owner": self.owner,
                "close_stdin": self.close_stdin,
                "enqueued_ms": self.enqueued_ms,
                "job": {
                    "language": job.language,
                    "files": job.files,
                    "entry": job.entry,
                    "stdin": job.stdin,
                    "tests": job.tests,
                    "limits": asdict(job.limits),
                },
            }
        ).encode("utf-8", "surrogatepass")

    @classmethod
    def decode(cls, raw: bytes) -> QueuedJob:
        """ValueError for anything that is not a job this version wrote."""
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("job"), dict):
            raise ValueError("not a queued job")
        j = data["job"]
        limits = j.get("limits")
        job = Job(
            language=j["language"],
            files=j["files"],
            entry=j.get("entry"),
            stdin=j.get("stdin", ""),
            tests=j.get("tests") or {},
            limits=Limits(**limits) if isinstance(limits, dict) else Limits(),
        )
        return cls(
            run=str(data["run"]),
            job=job,
            owner=str(data["owner"]),
            close_stdin=bool(data.get("close_stdin")),
            enqueued_ms=int(data.get("enqueued_ms") or 0),
        )


def now_ms() -> int:
    return int(time.time() * 1000)


def result_to_json(result: Result) -> bytes:
    data = asdict(result)
    return json.dumps(data).encode()


def result_from_json(raw: bytes) -> Result:
    data: dict[str, Any] = json.loads(raw)
    tests = data.get("tests")
    data["tests"] = [TestOutcome(**t) for t in tests] if isinstance(tests, list) else None
    return Result(**data)


def lost_result(message: str, wall_ms: float = 0.0) -> Result:
    """The result of a run whose worker went away: an error that says so."""
    return Result(
        status="error",
        exit_code=None,
        signal=None,
        wall_ms=round(wall_ms, 3),
        cpu_ms=0.0,
        peak_memory_bytes=0,
        message=f"worker lost: {message}",
    )
