"""The run queue's wire form and its settings (no Redis, no Docker)."""

from __future__ import annotations

import pytest

from executor import Job, Limits, Result
from executor import TestOutcome as Outcome
from executor.queue import Keys, QueuedJob, lost_result, result_from_json, result_to_json
from server.config import Settings


def test_a_job_survives_the_queue():
    job = Job(
        "python",
        {"main.py": "print('é')\n", "lib/x.py": ""},
        entry="main.py",
        stdin="1\n",
        tests={"test_x.py": "def test(): pass\n"},
        limits=Limits(cpus=0.5, wall_seconds=3.0, output_bytes=1000),
    )
    queued = QueuedJob("r1", job, "alice", True, 123)
    assert QueuedJob.decode(queued.encode()) == queued


def test_not_a_job_is_refused():
    for raw in (b"[]", b"{}", b'{"job": 1}', b"nope"):
        with pytest.raises(ValueError):
            QueuedJob.decode(raw)


def test_a_result_survives_the_queue():
    result = Result("ok", 0, None, 12.5, 3.0, 1 << 20, False, "2 of 2", [Outcome("t", True)], 1.0)
    assert result_from_json(result_to_json(result)) == result
    plain = Result("timeout", None, 9, 1000.0, 999.0, 0, message="stopped")
    assert result_from_json(result_to_json(plain)) == plain


def test_lost_result_says_so():
    lost = lost_result("the worker w1 stopped answering")
    assert lost.status == "error" and lost.message.startswith("worker lost: ")


def test_keys_stay_under_the_prefix():
    keys = Keys("p:")
    assert all(k.startswith("p:") for k in [keys.jobs, keys.workers, *keys.of_run("x")])


def test_run_queue_settings_are_checked():
    with pytest.raises(ValueError, match="REDIS_URL"):
        Settings(run_queue="redis")
    with pytest.raises(ValueError, match="local or redis"):
        Settings(run_queue="kafka")
    assert Settings(run_queue="redis", redis_url="redis://127.0.0.1:6379/0").run_queue == "redis"
