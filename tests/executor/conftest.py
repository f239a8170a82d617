"""Executor tests run against the real Docker Engine (skipped outside CI when it is absent)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from executor import Executor, ExecutorConfig, Job, Limits, OutputChunk, Result
from tests.conftest import RUN_IMAGE

IMAGE = RUN_IMAGE
MiB = 1024 * 1024
#: Small limits keep the hostile tests fast: short wall time, little memory.
TEST_LIMITS = Limits(
    cpus=1.0,
    memory_bytes=256 * MiB,
    disk_bytes=32 * MiB,
    wall_seconds=3.0,
    pids=64,
    output_bytes=1 * MiB,
)


@pytest.fixture(scope="session")
def docker_ready(docker_engine: None) -> None:
    """The executor tests' name for the shared Docker check (tests/conftest.py)."""


def make_config(**overrides: object) -> ExecutorConfig:
    values: dict[str, object] = {
        "image": IMAGE,
        "warm": 2,
        "max_containers": 24,
        "limits": TEST_LIMITS,
    }
    values.update(overrides)
    return ExecutorConfig(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executor(docker_ready: None) -> AsyncIterator[Executor]:
    ex = Executor(make_config())
    await ex.start()
    assert ex.available, ex.reason
    assert await ex.wait_warm(60), "the warm containers did not start within 60 s"
    yield ex
    await ex.close()


def text(chunks: list[OutputChunk], stream: str | None = None) -> str:
    return b"".join(c.data for c in chunks if stream is None or c.stream == stream).decode(
        "utf-8", "replace"
    )


async def run_py(
    ex: Executor, code: str, *, owner: str = "alice", **job: object
) -> tuple[Result, list[OutputChunk]]:
    return await ex.run(Job("python", {"main.py": code}, **job), owner=owner)  # type: ignore[arg-type]
