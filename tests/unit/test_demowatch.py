"""Live demo watching with explicit server times: what played while each viewer was in."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from demos import PlaybackState
from server.demowatch import Coverage, DemoWatch, Milestone, shown
from server.progressapi import credited_fraction

A = uuid.UUID(int=1)
B = uuid.UUID(int=2)

REC = PlaybackState(
    demo="rec", position=0.0, playing=False, rate=1.0, at=0.0, kind="recording", duration=100.0
)
WALK = PlaybackState(
    demo="walk", position=0.0, playing=False, rate=1.0, at=0.0, kind="walkthrough", duration=3.0
)


def s(seconds: float) -> float:
    return seconds * 1000.0


def test_coverage_merges_overlapping_spans() -> None:
    cover = Coverage()
    cover.add_span(0, 10)
    cover.add_span(20, 30)
    cover.add_span(5, 25)
    cover.add_span(40, 40)  # nothing
    assert cover.spans == [(0, 30)]
    assert cover.fraction("recording", 60) == 0.5
    assert Coverage(steps={0, 2, 7}).fraction("walkthrough", 3.0) == 0.5


def test_only_live_playing_recordings_show_time() -> None:
    playing = replace(REC, playing=True, rate=2.0)
    assert shown(playing, s(0), s(10)) == (0.0, 20.0)
    assert shown(REC, s(0), s(10)) is None  # paused
    assert shown(replace(playing, mode="self-paced"), s(0), s(10)) is None
    assert shown(replace(WALK, position=2.0), s(0), s(1)) == 2
    assert shown(playing, s(5), s(5)) is None


def test_viewers_get_what_played_while_they_were_connected() -> None:
    watch = DemoWatch(REC, s(0))
    watch.set_state(replace(REC, playing=True, at=s(0)), s(0), [A])
    watch.advance(s(30), [A])  # A alone for 30 s
    assert watch.milestones() == []
    watch.advance(s(55), [A, B])  # B came in at 30
    assert watch.milestones() == [Milestone(A, "rec", 0.5, 0.55)]
    # a seek forward skips what lies between
    watch.set_state(replace(REC, position=95.0, playing=True, at=s(55)), s(55), [A, B])
    watch.advance(s(60), [A, B])
    assert watch.coverage[A].spans == [(0.0, 55.0), (95.0, 100.0)]
    assert watch.milestones() == []
    # back to 55 and on to the end: A has it all, B the 70 s from 30 on
    watch.set_state(replace(REC, position=55.0, playing=True, at=s(60)), s(60), [A, B])
    watch.advance(s(200), [A, B])
    reached = watch.milestones()
    assert [(m.user, m.milestone) for m in reached] == [(A, 0.9), (B, 0.5)]
    assert reached[0].fraction == 1.0 and reached[1].fraction == pytest.approx(0.7)
    # a milestone is told once
    watch.advance(s(300), [A, B])
    assert watch.milestones() == []


def test_walkthrough_steps_shown_while_connected() -> None:
    watch = DemoWatch(WALK, s(0))
    watch.advance(s(10), [A])
    for step in (1, 2, 3):
        watch.set_state(replace(WALK, position=float(step)), s(10 * step + 10), [A])
        if step == 2:
            assert watch.milestones() == [Milestone(A, "walk", 0.5, 0.5)]
    watch.advance(s(50), [A])
    assert watch.milestones() == [Milestone(A, "walk", 0.9, 1.0)]
    assert watch.coverage[A].steps == {0, 1, 2, 3}


def test_another_demo_starts_from_nothing() -> None:
    watch = DemoWatch(replace(REC, playing=True), s(0))
    watch.advance(s(60), [A])
    watch.set_state(replace(REC, demo="other", playing=True, at=s(60)), s(60), [A])
    assert watch.coverage == {}
    watch.advance(s(70), [A])
    assert watch.coverage[A].spans == [(0.0, 10.0)]


def test_self_paced_claims_are_capped_by_elapsed_time_at_twice_the_speed() -> None:
    assert credited_fraction(1.0, 0.0, 120.0) == 0.0
    assert credited_fraction(1.0, 30.0, 120.0) == 0.5
    assert credited_fraction(0.3, 300.0, 120.0) == 0.3
    assert credited_fraction(1.0, 1000.0, 120.0) == 1.0
