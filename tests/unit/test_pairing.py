"""The pairing accrual with a fake clock: only time together AND active counts."""

from __future__ import annotations

import uuid

from server.pairing import Credit, PairAccrual

A = uuid.UUID(int=1)
B = uuid.UUID(int=2)
C = uuid.UUID(int=3)
WALL = 1_700_000_000_000  # wall ms at clock 0


def accrual() -> PairAccrual:
    return PairAccrual(minute=60.0, window=300.0, flush_every=300.0)


def at(t: float) -> int:
    return WALL + round(t * 1000)


def test_two_active_people_accrue_whole_minutes_until_one_leaves() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    assert pairs.observe(0.0, at(0), [A, B], active) == []
    for t in range(10, 130, 10):  # both keep editing
        active[A] = active[B] = float(t)
        assert pairs.observe(float(t), at(t), [A, B], active) == []
    assert pairs.seconds(A, B) == 120.0
    # 30 s more, then B leaves: 2.5 minutes -> 2 whole ones, the rest dropped
    credits = pairs.observe(150.0, at(150), [A], active)
    assert credits == [Credit(A, B, 2, at(0))]
    assert pairs.pairs == 0


def test_idling_together_is_not_pairing() -> None:
    pairs = accrual()
    pairs.observe(0.0, at(0), [A, B], {})
    assert pairs.observe(600.0, at(600), [A, B], {}) == []
    # only A works: still not a pair at work
    assert pairs.observe(900.0, at(900), [A, B], {A: 890.0}) == []
    assert pairs.seconds(A, B) == 0.0
    assert pairs.observe(1000.0, at(1000), [A], {A: 990.0}) == []


def test_activity_expires_after_the_window() -> None:
    pairs = accrual()
    pairs.observe(0.0, at(0), [A, B], {A: 0.0, B: 0.0})
    # nobody does anything for 20 minutes: only the first 5 (the window) count
    credits = pairs.observe(1200.0, at(1200), [A], {A: 0.0, B: 0.0})
    assert credits == [Credit(A, B, 5, at(0))]


def test_a_pair_that_becomes_active_counts_from_the_later_activity() -> None:
    pairs = accrual()
    pairs.observe(0.0, at(0), [A, B], {})
    # A edited at 100, B at 200: together at work from 200 on, not before
    pairs.observe(260.0, at(260), [A, B], {A: 100.0, B: 200.0})
    assert pairs.seconds(A, B) == 60.0
    credits = pairs.observe(270.0, at(270), [A], {A: 100.0, B: 200.0})
    assert credits == [Credit(A, B, 1, at(200))]


def test_long_sessions_are_credited_every_flush_and_keep_the_rest() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    pairs.observe(0.0, at(0), [A, B], active)
    credits = []
    for t in range(5, 665, 5):
        active[A] = active[B] = float(t)
        credits += pairs.observe(float(t), at(t), [A, B], active)
    # flushed at 300 s (5 min) and at 600 s; segment keys differ
    assert credits == [Credit(A, B, 5, at(0)), Credit(A, B, 5, at(300))]
    assert pairs.seconds(A, B) == 60.0
    credits = pairs.close(670.0, at(670), active)
    assert credits == [Credit(A, B, 1, at(600))]


def test_three_people_make_three_pairs_and_a_newcomer_starts_from_now() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0, C: 0.0}
    pairs.observe(0.0, at(0), [A, B], active)
    pairs.observe(60.0, at(60), [A, B, C], {A: 60.0, B: 60.0, C: 60.0})
    active = {A: 120.0, B: 120.0, C: 120.0}
    pairs.observe(120.0, at(120), [A, B, C], active)
    assert pairs.seconds(A, B) == 120.0
    assert pairs.seconds(A, C) == 60.0 and pairs.seconds(B, C) == 60.0
    credits = pairs.observe(121.0, at(121), [A, B], active)
    assert sorted(credits, key=lambda c: (c.a, c.b)) == [
        Credit(A, C, 1, at(60)),
        Credit(B, C, 1, at(60)),
    ]
    assert pairs.close(130.0, at(130), active) == [Credit(A, B, 2, at(0))]


def test_the_same_session_always_gives_the_same_credits() -> None:
    """What the keys are made of is a function of what was observed: a replay of the
    same observations gives the same segment starts."""

    def run() -> list[Credit]:
        pairs = accrual()
        active = {A: 0.0, B: 0.0}
        out = pairs.observe(0.0, at(0), [A, B], active)
        for t in range(30, 400, 30):
            active[A] = active[B] = float(t)
            out += pairs.observe(float(t), at(t), [A, B], active)
        return out + pairs.close(400.0, at(400), active)

    assert run() == run()
    assert [c.segment_start_ms for c in run()] == [at(0), at(300)]
