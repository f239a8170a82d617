"""Clock sync on simulated clocks: a local clock seconds off the server's, links with jitter."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from demos import ClockSync
from demos.clock import (
    BEST,
    BURST_COUNT,
    BURST_INTERVAL_MS,
    REFRESH_INTERVAL_MS,
    WINDOW,
    Sample,
    ping_delay,
)


class Link:
    """A simulated client whose clock is ``offset`` ms behind the server's.

    Each leg of a round trip takes its base delay (``up`` and ``down`` differ a
    little: a fixed asymmetry of ``|up - down| / 2`` is what no probe can see)
    plus, half the time, queueing: an exponential wait with mean ``up_jitter`` /
    ``down_jitter``, each leg on its own.
    """

    def __init__(
        self,
        offset: float,
        *,
        up: float,
        down: float,
        up_jitter: float,
        down_jitter: float,
        seed: int,
    ) -> None:
        self.offset = offset
        self.up, self.down = up, down
        self.up_jitter, self.down_jitter = up_jitter, down_jitter
        self.rng = random.Random(seed)

    def _queue(self, mean: float) -> float:
        return self.rng.expovariate(1 / mean) if self.rng.random() < 0.5 else 0.0

    def ping(self, server_now: float) -> tuple[float, float, float]:
        """One ping sent at server time ``server_now``: (local t0, server_time, local t1)."""
        up = self.up + self._queue(self.up_jitter)
        down = self.down + self._queue(self.down_jitter)
        t0 = server_now - self.offset
        return t0, server_now + up, t0 + up + down

    def estimate(self, n: int = WINDOW) -> tuple[ClockSync, list[float]]:
        """A ClockSync fed ``n`` pings on the real schedule, and each sample's own offset."""
        sync = ClockSync()
        now = 1.7e12
        offsets = []
        for i in range(n):
            sample = sync.add(*self.ping(now))
            assert sample is not None
            offsets.append(sample.offset)
            now += ping_delay(i + 1)
        return sync, offsets


def test_a_sample_is_the_ntp_formula():
    s = Sample(t0=1000.0, server_time=5050.0, t1=1100.0)
    assert s.delay == 100.0
    assert s.offset == 5050.0 - 1050.0


def test_symmetric_links_give_the_exact_offset():
    sync = ClockSync()
    assert not sync.synced and sync.offset is None
    sync.add(0.0, 2_000_010.0, 20.0)  # 10 ms each way, server 2,000 s ahead
    assert sync.synced
    assert sync.offset == 2_000_000.0
    assert sync.server_now(500.0) == 2_000_500.0


@pytest.mark.parametrize("profile", [(40.0, 10.0), (10.0, 40.0), (25.0, 25.0)])
@pytest.mark.parametrize("seed", range(30))
def test_seconds_of_offset_are_recovered_within_a_few_ms_despite_jitter(
    seed: int, profile: tuple[float, float]
):
    true_offset = random.Random(seed).uniform(-2500.0, 2500.0)
    # 12 ms up, 8 ms down (2 ms of error nobody can see), plus tens of ms of queueing
    link = Link(
        true_offset, up=12.0, down=8.0, up_jitter=profile[0], down_jitter=profile[1], seed=seed
    )
    sync, _ = link.estimate()
    assert sync.offset is not None
    error = abs(sync.offset - true_offset)
    assert error < 5.0, f"estimate off by {error:.1f} ms"


def test_the_lowest_delay_rule_beats_averaging_every_sample():
    errors, naive = [], []
    for seed in range(50):
        true_offset = random.Random(seed).uniform(-2500.0, 2500.0)
        link = Link(true_offset, up=12.0, down=8.0, up_jitter=40.0, down_jitter=10.0, seed=seed)
        sync, offsets = link.estimate()
        assert sync.offset is not None
        errors.append(abs(sync.offset - true_offset))
        naive.append(abs(statistics.mean(offsets) - true_offset))
    assert statistics.median(errors) < 2.5
    assert statistics.median(naive) > 3 * statistics.median(errors)


def test_the_lowest_delay_samples_decide_whatever_the_others_say():
    sync = ClockSync()
    true_offset = -1234.0
    # a congested link: most samples queued 100-400 ms on one leg only
    for i, (up, down) in enumerate([(300, 10), (10, 250), (400, 10), (10, 100)] * 3):
        t0 = 1000.0 * i
        sync.add(t0, t0 + true_offset + up, t0 + up + down)
    # three quiet samples among them
    for t0 in (20_000.0, 21_000.0, 22_000.0):
        sync.add(t0, t0 + true_offset + 6.0, t0 + 12.0)
    assert sync.offset == pytest.approx(true_offset)
    assert sync.delay == 12.0


def test_the_median_of_the_best_outvotes_one_lucky_but_wrong_sample():
    sync = ClockSync()
    assert BEST == 3
    sync.add(0.0, 500.0 + 5.0, 10.0)  # offset 500, delay 10
    sync.add(100.0, 600.0 + 6.0, 112.0)  # offset 500, delay 12
    # the fastest of all, yet 40 ms off (the up leg was slow, down instant)
    sync.add(200.0, 740.0 + 4.0, 208.0)
    assert sync.offset == pytest.approx(500.0)


def test_only_the_most_recent_window_counts_so_a_changed_clock_is_followed():
    sync = ClockSync()
    for i in range(WINDOW):  # great samples: offset 0, 2 ms round trip
        sync.add(i * 2000.0, i * 2000.0 + 1.0, i * 2000.0 + 2.0)
    assert sync.offset == 0.0
    # the local clock is stepped by 3 s; the new samples are worse (10 ms round trip)
    base = WINDOW * 2000.0
    for i in range(WINDOW):
        t0 = base + i * 2000.0
        sync.add(t0, t0 + 3000.0 + 5.0, t0 + 10.0)
        if i < WINDOW - BEST:
            assert sync.offset != pytest.approx(3000.0)  # the old ones still win...
    assert sync.offset == pytest.approx(3000.0)  # ...until they leave the window
    assert len(sync.samples) == WINDOW


def test_impossible_samples_are_dropped():
    sync = ClockSync()
    sync.add(0.0, 1000.0, 10.0)
    assert sync.add(100.0, 5000.0, 90.0) is None  # came back before it left
    assert sync.add(math.nan, 5000.0, 90.0) is None
    assert sync.add(100.0, math.inf, 190.0) is None
    assert len(sync.samples) == 1 and sync.offset == 995.0


def test_hello_seeds_a_rough_offset_until_the_first_pong():
    sync = ClockSync()
    assert sync.server_now(100.0) == 100.0  # nothing known: the local clock
    sync.seed(server_time=5000.0, local_receive=1000.0)
    assert not sync.synced
    assert sync.server_now(1100.0) == 5100.0
    sync.add(2000.0, 6010.0, 2020.0)
    assert sync.offset == 4000.0  # a real sample replaces the seed


def test_schedule_is_a_burst_then_a_refresh():
    delays = [ping_delay(n) for n in range(10)]
    assert delays[0] == 0.0
    assert delays[1:BURST_COUNT] == [BURST_INTERVAL_MS] * (BURST_COUNT - 1)
    assert delays[BURST_COUNT:] == [REFRESH_INTERVAL_MS] * (10 - BURST_COUNT)
    assert (BURST_COUNT, BURST_INTERVAL_MS, REFRESH_INTERVAL_MS) == (6, 50.0, 2000.0)
    assert sum(delays[:BURST_COUNT]) == 250.0  # the burst is done within a quarter second
