"""The worker-only options for several workers on one host: slots and CPU pinning.

No Redis, no Docker: the container create call is caught before it reaches an engine,
and the worker's Redis is a fake with an endless backlog of jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from docker.types import HostConfig

from executor import Executor, ExecutorConfig, Limits
from executor.engine import Engine, Shape
from executor.worker import Worker, check_cpuset
from server.cli import build_parser, worker_main


class _Created(Exception):
    """Raised by the fake engine once it has the container's host config."""


class _FakeApi:
    def __init__(self) -> None:
        self.host_config: dict[str, Any] = {}

    def create_host_config(self, **kwargs: Any) -> HostConfig:
        return HostConfig(version="1.41", **kwargs)

    def create_container(self, **kwargs: Any) -> dict[str, str]:
        self.host_config = dict(kwargs["host_config"])
        raise _Created


class _FakeClient:
    def __init__(self) -> None:
        self.api = _FakeApi()


def host_config_of(engine: Engine) -> dict[str, Any]:
    client = _FakeClient()
    engine._client = client  # type: ignore[assignment]
    with pytest.raises(_Created):
        engine.create(Shape.of("img", Limits(cpus=0.5)), "box-1", {})
    return client.api.host_config


def test_containers_use_any_cpu_unless_pinned() -> None:
    engine = Engine(None)
    config = host_config_of(engine)
    assert "CpusetCpus" not in config
    assert config["NanoCpus"] == 500_000_000
    config = host_config_of(Engine(None, cpuset_cpus="1"))
    assert config["CpusetCpus"] == "1"
    assert config["NanoCpus"] == 500_000_000  # the run's own CPU limit still holds


def test_a_worker_pins_its_containers_only_when_asked() -> None:
    config = ExecutorConfig(max_containers=12)
    plain = Worker("redis://127.0.0.1:6379/0", "p:", config)
    assert plain.executor.config.cpuset_cpus is None
    assert plain.concurrency == 12  # the default: one job per container
    pinned = Worker("redis://127.0.0.1:6379/0", "p:", config, concurrency=3, cpuset_cpus=" 0 ")
    assert pinned.executor.config.cpuset_cpus == "0"
    assert pinned.concurrency == 3
    with pytest.raises(ValueError, match="concurrency"):
        Worker("redis://127.0.0.1:6379/0", "p:", config, concurrency=0)


@pytest.mark.parametrize("good", ["0", "1", "0-1", "0,2", "0-3,6,8-9"])
def test_cpusets_in_docker_syntax(good: str) -> None:
    assert check_cpuset(good) == good


@pytest.mark.parametrize("bad", ["", "a", "0-", "-1", "0,,1", "1-0", "0 1", "0.5"])
def test_not_a_cpuset(bad: str) -> None:
    with pytest.raises(ValueError, match="CPU set"):
        check_cpuset(bad)


def test_worker_flags_default_to_nothing() -> None:
    args = build_parser().parse_args(["worker"])
    assert args.worker_slots is None
    assert args.worker_cpuset is None
    args = build_parser().parse_args(["worker", "--worker-slots", "4", "--worker-cpuset", "1"])
    assert (args.worker_slots, args.worker_cpuset) == (4, "1")


@pytest.mark.parametrize(
    ("flags", "says"),
    [(["--worker-cpuset", "one"], "CPU set"), (["--worker-slots", "0"], "--worker-slots")],
)
def test_bad_worker_flags_stop_the_worker_before_it_starts(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["worker", "--redis-url", "redis://127.0.0.1:1/0", *flags])
    assert worker_main(args) == 2
    assert says in capsys.readouterr().err


class _Backlog:
    """A jobs stream that always has more: ``xreadgroup`` returns as many as asked for."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def xreadgroup(self, *_: Any, count: int, block: int) -> list[Any]:
        self.asked.append(count)
        first = sum(self.asked) - count
        await asyncio.sleep(0)
        return [(b"jobs", [(f"1-{first + i}".encode(), {b"job": b"-"}) for i in range(count)])]


async def test_a_worker_takes_no_more_jobs_than_its_slots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job counts from the moment it is read, not once started (a few Redis round trips
    later): otherwise, with a backlog, the worker reads far more jobs than it has slots."""
    monkeypatch.setattr(Executor, "available", property(lambda self: True))
    worker = Worker("redis://127.0.0.1:6379/0", "p:", ExecutorConfig(), concurrency=3)
    backlog = _Backlog()
    worker._r = backlog  # type: ignore[assignment]
    release = asyncio.Event()
    most = 0
    #: Jobs past their round trips, waiting to be released.
    parked = 0

    async def job(entry_id: str, fields: dict[bytes, bytes], *, reclaimed: bool) -> None:
        nonlocal most, parked
        most = max(most, worker.in_hand)
        await asyncio.sleep(0.02)  # the round trips before a job is registered as started
        parked += 1
        await release.wait()

    async def until(check: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + 5
        while not check():
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.005)

    monkeypatch.setattr(worker, "_job", job)
    taking = asyncio.get_running_loop().create_task(worker._take_jobs())
    # Once the three are past the window in which the old code read more:
    await until(lambda: parked == 3, "three jobs in hand")
    assert sum(backlog.asked) == 3 and worker.in_hand == 3
    release.set()  # the three end: their slots are taken again at once, never more than 3
    await until(lambda: sum(backlog.asked) > 6, "more jobs taken after the three ended")
    worker.stop()
    await asyncio.wait_for(taking, 5)
    await asyncio.gather(*worker._tasks)
    assert most <= 3
