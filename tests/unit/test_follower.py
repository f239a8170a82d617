"""The follower's playhead on a simulated clock: smooth catch-up, seeks, exact pauses."""

from __future__ import annotations

import pytest

from demos import Follower, PlaybackState
from demos.follower import GAIN, MAX_NUDGE, SEEK_THRESHOLD, state_from_message
from demos.playback import LEAD_MS

FRAME_MS = 1000.0 / 60.0
#: The simulated client's clock is this far behind the server's (known exactly here:
#: clock errors are ClockSync's business; the follower takes the estimate as given).
OFFSET_MS = 2345.0


class FixedClock:
    def __init__(self, offset: float = OFFSET_MS) -> None:
        self.offset = offset

    def server_now(self, local_now: float) -> float:
        return local_now + self.offset


def state(**kw: object) -> PlaybackState:
    base: dict[str, object] = dict(
        demo="rec",
        position=0.0,
        playing=False,
        rate=1.0,
        at=0.0,
        kind="recording",
        duration=600.0,
    )
    base.update(kw)
    return PlaybackState(**base)  # type: ignore[arg-type]


def run(
    follower: Follower, local_start: float, seconds: float, frame_ms: float = FRAME_MS
) -> list[tuple[float, float]]:
    """Tick every frame for ``seconds``: [(local time, shown)]."""
    out = []
    frames = int(seconds * 1000 / frame_ms)
    for i in range(1, frames + 1):
        t = local_start + i * frame_ms
        out.append((t, follower.tick(t)))
    return out


def server(local: float) -> float:
    return local + OFFSET_MS


def test_constants_the_web_page_mirrors():
    assert (GAIN, MAX_NUDGE, SEEK_THRESHOLD, LEAD_MS) == (5.0, 0.1, 0.3, 150.0)


def test_a_first_state_is_shown_at_once_where_the_server_is():
    f = Follower(FixedClock())
    local = 10_000.0
    # a late joiner: the demo has been playing at 1.5x for 40 s of server time
    f.update(state(position=12.0, playing=True, rate=1.5, at=server(local) - 40_000.0))
    assert f.tick(local) == pytest.approx(12.0 + 40 * 1.5)
    assert f.seeks == 0


def test_a_late_state_is_absorbed_by_a_brief_speed_change_not_a_jump():
    clock = FixedClock()
    f = Follower(clock)
    local = 0.0
    f.update(state(position=30.0, playing=False, at=server(local)))
    assert f.tick(local) == 30.0
    # "play" was meant for 150 ms after it was sent; this slow viewer gets it 120 ms
    # late, frames having gone on meanwhile
    at = server(local) + LEAD_MS
    assert all(shown == 30.0 for _, shown in run(f, local, (LEAD_MS + 120.0) / 1000.0))
    local = f._last_local or 0.0
    f.update(state(position=30.0, playing=True, at=at))
    prev_t, prev_shown = local, f.shown
    trace = run(f, local, 3.0)
    speeds = []
    for t, shown in trace:
        speeds.append((shown - prev_shown) / ((t - prev_t) / 1000.0))
        prev_t, prev_shown = t, shown
    assert f.seeks == 0
    assert all(1.0 - 1e-9 <= v <= 1.0 + MAX_NUDGE + 1e-9 for v in speeds)
    assert max(speeds) == pytest.approx(1.0 + MAX_NUDGE)  # it did run fast for a while
    t_end, shown_end = trace[-1]
    target = 30.0 + (server(t_end) - at) / 1000.0
    assert abs(shown_end - target) < 0.001  # converged within 3 s
    # and it never ran ahead of the target on the way
    assert all(shown <= 30.0 + (server(t) - at) / 1000.0 + 1e-9 for t, shown in trace)


def test_small_clock_corrections_never_seek_and_are_followed():
    clock = FixedClock()
    f = Follower(clock)
    f.update(state(position=100.0, playing=True, rate=2.0, at=server(0.0)))
    f.tick(0.0)
    run(f, 0.0, 1.0)
    clock.offset += 40.0  # the estimate moved by 40 ms: at rate 2 the target moves 80 ms
    trace = run(f, 1000.0, 2.0)
    assert f.seeks == 0
    t, shown = trace[-1]
    assert shown == pytest.approx(f.state.position_at(clock.server_now(t)), abs=1e-3)


def test_a_big_jump_seeks_at_the_scheduled_moment():
    f = Follower(FixedClock())
    start = server(0.0)
    f.update(state(position=10.0, playing=True, at=start))
    f.tick(0.0)
    run(f, 0.0, 1.0)  # at 11.0 now
    sent = 1000.0
    at = server(sent) + LEAD_MS
    f.update(state(position=250.0, playing=True, at=at))
    # before its moment the old state still plays on, for this viewer as for everyone
    before = f.tick(sent + LEAD_MS - 20.0)
    assert before == pytest.approx(11.0 + (LEAD_MS - 20.0) / 1000.0, abs=1e-6)
    assert len(f.pending) == 1
    after = f.tick(sent + LEAD_MS + 10.0)
    assert after == pytest.approx(250.01)
    assert f.seeks == 1 and not f.pending


def test_a_seek_while_paused_is_exact():
    f = Follower(FixedClock())
    f.update(state(position=5.0, at=server(0.0)))
    f.tick(0.0)
    f.update(state(position=99.25, at=server(0.0) + LEAD_MS))
    assert f.tick(LEAD_MS + 1.0) == 99.25


def test_pause_shows_the_pause_position_exactly():
    f = Follower(FixedClock())
    f.update(state(position=0.0, playing=True, at=server(0.0)))
    f.tick(0.0)
    run(f, 0.0, 2.0)
    pause_at = server(2000.0) + LEAD_MS
    paused = state(position=2.15, playing=False, at=pause_at)
    f.update(paused)
    shown = f.tick(2000.0 + LEAD_MS + 0.5)
    assert shown == 2.15
    assert run(f, 2200.0, 1.0)[-1][1] == 2.15  # and stays there


def test_never_shows_past_the_end():
    f = Follower(FixedClock())
    f.update(state(position=597.0, playing=True, rate=2.0, at=server(0.0)))
    f.tick(0.0)
    trace = run(f, 0.0, 4.0)
    assert all(shown <= 600.0 for _, shown in trace)
    assert trace[-1][1] == 600.0
    # a viewer whose estimate is ahead, and a late state carrying it past the end
    g = Follower(FixedClock(OFFSET_MS + 250.0))
    g.update(state(position=599.9, playing=True, rate=2.0, at=server(0.0)))
    assert g.tick(10.0) == 600.0


def test_a_long_frame_lands_on_the_target_instead_of_overshooting():
    f = Follower(FixedClock())
    f.update(state(position=0.0, playing=True, at=server(0.0)))
    f.tick(0.0)
    f.shown -= 0.05  # 50 ms behind
    shown = f.tick(1000.0)  # one frame a second long (a background tab)
    assert shown == pytest.approx(1.0)


def test_states_in_flight_take_over_in_order():
    f = Follower(FixedClock())
    f.update(state(position=0.0, playing=True, at=server(0.0)))
    f.tick(0.0)
    f.update(state(position=40.0, playing=True, at=server(100.0)))
    f.update(state(position=40.05, playing=False, at=server(150.0)))
    assert f.tick(120.0) == pytest.approx(40.02)
    assert f.tick(160.0) == 40.05


def test_a_walkthrough_moves_by_whole_steps():
    f = Follower(FixedClock())
    f.update(state(demo="walk", kind="walkthrough", duration=4.0, position=0.0, at=server(0.0)))
    f.tick(0.0)
    f.update(state(demo="walk", kind="walkthrough", duration=4.0, position=3.0, at=server(50.0)))
    assert f.tick(60.0) == 3.0


def test_another_demo_is_shown_where_it_starts_without_counting_a_seek():
    f = Follower(FixedClock())
    f.update(state(position=300.0, playing=True, at=server(0.0)))
    f.tick(0.0)
    f.update(state(demo="other", position=0.0, playing=False, duration=10.0, at=server(100.0)))
    assert f.tick(200.0) == 0.0
    assert f.seeks == 0


def test_a_demo_state_message_is_read_as_sent():
    msg = {
        "type": "demo.state",
        "demo": "hello",
        "position": 1.5,
        "playing": True,
        "rate": 0.5,
        "at": 1.7e12,
        "by": "Ines",
        "kind": "recording",
        "duration": 2.0,
        "mode": "live",
    }
    s = state_from_message(msg)
    assert (s.demo, s.position, s.playing, s.rate, s.at, s.kind, s.duration) == (
        "hello",
        1.5,
        True,
        0.5,
        1.7e12,
        "recording",
        2.0,
    )
    f = Follower()
    f.update(msg)
    assert f.tick(1.7e12 + 1000.0) == pytest.approx(2.0)


def test_a_state_received_in_time_is_followed_exactly_from_its_moment():
    f = Follower(FixedClock())
    f.update(state(position=7.0, at=server(0.0)))
    f.tick(0.0)
    at = server(0.0) + LEAD_MS
    f.update(state(position=7.0, playing=True, at=at))  # in time: 150 ms ahead
    for t, shown in run(f, 0.0, 2.0):
        # frames do not line up with `at`; the playhead still starts exactly then
        assert shown == pytest.approx(7.0 + max(0.0, server(t) - at) / 1000.0, abs=1e-9)
    assert f.seeks == 0
