"""The playback state machine, on a clock the test holds."""

from __future__ import annotations

import pytest

from demos import IDLE, PlaybackError, Timeline, apply, load_demo, load_state, timeline_of
from demos.playback import LEAD_MS

RECORDING = Timeline(
    demo="rec",
    title="A recording",
    kind="recording",
    steps=(),
    markers=((4.0, "loops"), (9.5, "functions")),
    duration=12.0,
)
WALK = Timeline(
    demo="walk", title="Steps", kind="walkthrough", steps=("a", "b", "c"), markers=(), duration=2.0
)


def test_load_then_play_moves_with_server_time_from_the_scheduled_moment():
    loaded = load_state(RECORDING, 1000.0)
    assert (loaded.demo, loaded.position, loaded.playing, loaded.kind) == (
        "rec",
        0.0,
        False,
        "recording",
    )
    playing = apply(loaded, RECORDING, "play", 2000.0)
    assert playing.at == 2000.0 + LEAD_MS
    assert playing.position_at(playing.at) == 0.0
    assert playing.position_at(playing.at + 3000.0) == pytest.approx(3.0)
    # never past the end
    assert playing.position_at(playing.at + 60_000.0) == 12.0


def test_pause_keeps_the_position_reached_and_rate_scales_time():
    playing = apply(load_state(RECORDING, 0.0), RECORDING, "play", 0.0)
    fast = apply(playing, RECORDING, "rate", playing.at + 2000.0, rate=2.0)
    assert fast.position == pytest.approx(2.0 + LEAD_MS / 1000.0)
    paused = apply(fast, RECORDING, "pause", fast.at + 1000.0)
    assert paused.position == pytest.approx(fast.position + 2.0 + 2 * LEAD_MS / 1000.0)
    assert paused.position_at(paused.at + 10_000.0) == paused.position


def test_seek_to_a_time_a_marker_or_a_step():
    rec = load_state(RECORDING, 0.0)
    assert apply(rec, RECORDING, "seek", 0.0, position=7.5).position == 7.5
    assert apply(rec, RECORDING, "seek", 0.0, marker="functions").position == 9.5
    walk = load_state(WALK, 0.0)
    assert apply(walk, WALK, "seek", 0.0, step="c").position == 2.0
    after_next = apply(walk, WALK, "next", 0.0)
    assert after_next.position == 1.0
    assert apply(after_next, WALK, "prev", 0.0).position == 0.0


def test_a_finished_recording_plays_again_from_the_start():
    at_end = apply(load_state(RECORDING, 0.0), RECORDING, "seek", 0.0, position=12.0)
    assert apply(at_end, RECORDING, "play", 0.0).position == 0.0


def test_self_paced_mode_pauses_the_room_and_unload_clears_it():
    playing = apply(load_state(RECORDING, 0.0), RECORDING, "play", 0.0)
    own = apply(playing, RECORDING, "mode", 1000.0, mode="self-paced")
    assert own.mode == "self-paced" and not own.playing
    assert apply(own, RECORDING, "unload", 2000.0).demo is None


def test_the_errors_a_presenter_is_told():
    rec = load_state(RECORDING, 0.0)
    walk = load_state(WALK, 0.0)
    for state, timeline, action, kwargs, says in [
        (IDLE, None, "play", {}, "no demo is loaded"),
        (rec, RECORDING, "seek", {"position": -1.0}, "from 0 to 12"),
        (rec, RECORDING, "seek", {"position": 13.0}, "from 0 to 12"),
        (rec, RECORDING, "seek", {}, "exactly one of"),
        (rec, RECORDING, "seek", {"position": 1.0, "marker": "loops"}, "exactly one of"),
        (rec, RECORDING, "seek", {"marker": "nope"}, "no marker 'nope'"),
        (rec, RECORDING, "rate", {"rate": 3.0}, "between 0.5 and 2.0"),
        (rec, RECORDING, "rewind", {}, "unknown demo action"),
        (rec, RECORDING, "next", {}, "walkthrough's steps"),
        (rec, RECORDING, "mode", {"mode": "solo"}, "live, self-paced"),
        (walk, WALK, "play", {}, "moves by steps"),
        (walk, WALK, "prev", {}, "first step"),
        (walk, WALK, "seek", {"step": "z"}, "no step 'z'"),
        (walk, WALK, "seek", {"position": 1.5}, "whole step"),
    ]:
        with pytest.raises(PlaybackError, match=says):
            apply(state, timeline, action, 0.0, **kwargs)


def test_timelines_of_the_shipped_examples():
    from demos.format import SCHEMA_PATH

    folder = SCHEMA_PATH.parent.parent / "examples"
    rec = timeline_of("hello", load_demo(folder / "hello-recording.demo.json"))
    assert rec.kind == "recording" and rec.duration > 0 and rec.markers
    walk = timeline_of("loops", load_demo(folder / "python-loops.demo.json"))
    assert walk.kind == "walkthrough" and walk.duration == len(walk.steps) - 1
