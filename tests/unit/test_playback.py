"""The playback state machine, on a clock the test holds."""

from __future__ import annotations

import pytest

from demos import IDLE, PlaybackError, apply
from demos.playback import LEAD_MS


def test_load_then_play_moves_with_server_time_from_the_scheduled_moment():
    loaded = apply(IDLE, "load", 1000.0, demo="loops")
    assert (loaded.demo, loaded.position, loaded.playing) == ("loops", 0.0, False)
    playing = apply(loaded, "play", 2000.0)
    assert playing.at == 2000.0 + LEAD_MS
    assert playing.position_at(playing.at) == 0.0
    assert playing.position_at(playing.at + 3000.0) == pytest.approx(3.0)


def test_pause_keeps_the_position_reached_and_rate_scales_time():
    playing = apply(apply(IDLE, "load", 0.0, demo="d"), "play", 0.0)
    fast = apply(playing, "rate", playing.at + 2000.0, rate=2.0)
    assert fast.position == pytest.approx(2.0 + LEAD_MS / 1000.0)
    paused = apply(fast, "pause", fast.at + 1000.0)
    assert paused.position == pytest.approx(fast.position + 2.0 + 2 * LEAD_MS / 1000.0)
    assert paused.position_at(paused.at + 10_000.0) == paused.position


def test_seek_and_the_errors_a_presenter_is_told():
    loaded = apply(IDLE, "load", 0.0, demo="d")
    assert apply(loaded, "seek", 0.0, position=42.0).position == 42.0
    for state, action, kwargs in [
        (IDLE, "play", {}),
        (loaded, "seek", {"position": -1.0}),
        (loaded, "seek", {}),
        (loaded, "rate", {"rate": 3.0}),
        (loaded, "rewind", {}),
        (IDLE, "load", {"demo": ""}),
    ]:
        with pytest.raises(PlaybackError):
            apply(state, action, 0.0, **kwargs)
