"""State the nodes share in Redis, against the machine's real Redis (under a test prefix).

The GCRA script must give the same answers as the in-process ``HourlyLimit``
(the whole allowance at once, then one per interval, and an exact retry-after);
a run slot is taken by one owner at a time and frees itself when its holder
stops renewing it (a killed node). When Redis does not answer, both fall back
to the node's own rule at once, without waiting. Without Redis, these tests
skip outside CI and fail in CI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from rooms.extension import RunStarted
from server.ratelimit import HourlyLimit
from server.runslots import RunSlots
from server.sharedlimit import SharedHourlyLimit
from server.sharedredis import SharedRedis, state_prefix
from tests.cluster import free_port
from tests.conftest import REDIS_URL


@pytest.fixture
async def shared(redis_prefix: str) -> AsyncIterator[SharedRedis]:
    client = SharedRedis(REDIS_URL, prefix=state_prefix(redis_prefix))
    try:
        yield client
    finally:
        await client.close()


def _fallbacks(what: str) -> float:
    value = REGISTRY.get_sample_value("opencode_live_shared_state_fallbacks_total", {"what": what})
    return value or 0.0


async def test_gcra_in_redis_allows_the_allowance_then_one_per_interval(shared: SharedRedis):
    limit = SharedHourlyLimit(shared, "runs", 4, period=3600)
    now = 1_000_000.0
    assert [await limit.spend("u", now=now) for _ in range(4)] == [None] * 4
    wait = await limit.spend("u", now=now)
    assert wait == pytest.approx(900.0)  # one request per 3600 / 4 seconds
    # A refusal spends nothing: the same wait, then allowed exactly when it is due.
    assert await limit.spend("u", now=now + 899.0) == pytest.approx(1.0)
    assert await limit.spend("u", now=now + 900.0) is None
    assert await limit.spend("u", now=now + 900.0) == pytest.approx(900.0)
    assert await limit.spend("other", now=now) is None  # per key


async def test_gcra_in_redis_matches_the_local_limit_and_expires_its_keys(shared: SharedRedis):
    local = HourlyLimit(3, period=60)
    limit = SharedHourlyLimit(shared, "api", 3, period=60)
    start = 5_000.0
    for offset in (0.0, 0.0, 0.0, 0.0, 5.0, 19.9, 20.0, 20.0, 45.0, 61.0):
        mine = await limit.spend("ada", now=start + offset)
        theirs = local.hit("ada", now=start + offset)
        assert (mine is None) == (theirs is None), offset
        if mine is not None and theirs is not None:
            assert mine == pytest.approx(theirs, abs=1e-3)
    # With Redis's own clock: the key lives until the allowance has recovered, no longer.
    await limit.spend("bob")
    ttl_ms = await shared.client.pttl(limit.key("bob"))
    assert 0 < ttl_ms <= 20_000


async def test_an_unreachable_redis_falls_back_to_the_local_count_at_once():
    away = SharedRedis(f"redis://127.0.0.1:{free_port()}/0", prefix="ocl-test-away:")
    try:
        limit = SharedHourlyLimit(away, "api", 2, period=3600)
        before = _fallbacks("limit:api")
        started = time.monotonic()
        answers = [await limit.spend("u") for _ in range(3)]
        assert answers[:2] == [None, None] and answers[2] is not None  # counted locally
        assert time.monotonic() - started < 2.0  # never waits on Redis per request
        assert _fallbacks("limit:api") - before == 3
        slots = RunSlots(away)
        assert await slots.take("room", "run-1")  # this node's own rule applies
        assert await slots.read("room") is None
        await slots.release("room", "run-1")
        await slots.close()
    finally:
        await away.close()


async def test_a_run_slot_is_held_by_one_run_and_frees_itself_when_not_renewed(
    shared: SharedRedis,
):
    node_a, node_b = RunSlots(shared, ttl=0.6), RunSlots(shared, ttl=0.6)
    try:
        assert await node_a.take("lab", "run-a")
        assert not await node_b.take("lab", "run-b")
        record = await node_b.read("lab")
        assert record is not None and (record.node, record.run) == (node_a.node, "run-a")
        assert record.started is None  # not started yet: nobody is told of it
        started = RunStarted(run="run-a", by="Olive", language="python", entry="main.py", at=1.0)
        await node_a.announce("lab", started)
        record = await node_b.read("lab")
        assert record is not None and record.started == started
        # Renewed while held: taken all along, well past its TTL.
        held_until = time.monotonic() + 2.5 * node_a.ttl
        while time.monotonic() < held_until:
            assert not await node_b.take("lab", "run-b")
            await asyncio.sleep(0.05)
        await node_a.release("lab", "run-a")
        assert await node_b.read("lab") is None
        assert await node_b.take("lab", "run-b")
        await node_b.release("lab", "run-wrong")  # only its own run releases a slot
        assert (await node_a.read("lab")) is not None
        # Node B dies (stops renewing, never releases): the slot frees itself.
        await node_b.close()
        deadline = time.monotonic() + 5
        while not await node_a.take("lab", "run-c"):
            assert time.monotonic() < deadline, "the slot of a dead node never expired"
            await asyncio.sleep(0.05)
        await node_a.release("lab", "run-c")
    finally:
        await node_a.close()
        await node_b.close()
