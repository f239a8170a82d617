"""Rate limits as arithmetic on a clock the test holds."""

from __future__ import annotations

import pytest

from server.ratelimit import HourlyLimit, SocketBudget, SocketRates, retry_after_header


def test_hourly_limit_allows_the_allowance_at_once_then_one_per_interval():
    limit = HourlyLimit(4, period=3600)
    assert [limit.hit("u", now=0.0) for _ in range(4)] == [None] * 4
    wait = limit.hit("u", now=0.0)
    assert wait == pytest.approx(900.0)  # one request per 3600 / 4 seconds
    assert limit.hit("u", now=899.0) is not None
    assert limit.hit("u", now=900.0) is None
    assert limit.hit("other", now=0.0) is None  # per key


def test_refused_requests_do_not_use_up_the_allowance():
    limit = HourlyLimit(2, period=60)
    limit.hit("u", now=0.0)
    limit.hit("u", now=0.0)
    for _ in range(100):
        assert limit.hit("u", now=1.0) is not None
    assert limit.hit("u", now=30.0) is None


def test_remaining_counts_down_and_recovers():
    limit = HourlyLimit(10, period=100)
    assert limit.remaining("u", now=0.0) == 10
    for _ in range(3):
        limit.hit("u", now=0.0)
    assert limit.remaining("u", now=0.0) == 7
    assert limit.remaining("u", now=100.0) == 10


def test_retry_after_is_whole_seconds_rounded_up():
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


def test_socket_budget_spends_messages_and_bytes_and_refills_with_time():
    rates = SocketRates(
        messages_per_second=10, message_burst=3, bytes_per_second=100, byte_burst=300
    )
    budget = SocketBudget(rates, now=0.0)
    assert [budget.spend(10, now=0.0) for _ in range(3)] == [None] * 3
    assert "messages per second" in (budget.spend(10, now=0.0) or "")
    assert budget.spend(10, now=0.1) is None  # 0.1 s brings one message back
    fresh = SocketBudget(rates, now=0.0)
    assert fresh.spend(250, now=0.0) is None
    assert "bytes per second" in (fresh.spend(100, now=0.0) or "")
    assert fresh.spend(100, now=1.0) is None


async def test_spend_is_hit_for_callers_that_also_take_a_shared_limit():
    limit = HourlyLimit(2, period=3600)
    assert await limit.spend("u") is None
    assert await limit.spend("u") is None
    wait = await limit.spend("u")
    assert wait is not None and 1799 < wait <= 1800
    assert limit.hit("u") is not None  # the same count
