"""The authoritative playback state of a room's demo, kept by the server.

The presenter's commands change one small state, ``{demo, position, playing,
rate, at}``, and everyone derives what to show from it and their estimate of
the server clock: at server time ``t`` the demo is at ``position + (t - at) *
rate`` while playing. A change takes effect at ``at``, a little in the future,
so that every viewer applies it at the same moment instead of when the message
happens to reach them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: How far ahead of now (ms) a change is scheduled: enough for it to reach everyone.
LEAD_MS = 150.0
MIN_RATE = 0.5
MAX_RATE = 2.0
MAX_DEMO_ID = 200
ACTIONS = ("load", "play", "pause", "seek", "rate")


class PlaybackError(ValueError):
    """A command that cannot apply (no demo loaded, a rate out of range...); told to its sender."""


@dataclass(frozen=True, slots=True)
class PlaybackState:
    demo: str | None
    #: Seconds into the demo at server time ``at``.
    position: float
    playing: bool
    rate: float
    #: Server time (ms since the epoch) at which this state takes effect.
    at: float

    def position_at(self, now_ms: float) -> float:
        if not self.playing or now_ms <= self.at:
            return self.position
        return self.position + (now_ms - self.at) / 1000.0 * self.rate


IDLE = PlaybackState(demo=None, position=0.0, playing=False, rate=1.0, at=0.0)


def apply(
    state: PlaybackState,
    action: str,
    now_ms: float,
    *,
    demo: str | None = None,
    position: float | None = None,
    rate: float | None = None,
) -> PlaybackState:
    """The state after one command, effective ``LEAD_MS`` from now."""
    at = now_ms + LEAD_MS
    if action == "load":
        if not demo or len(demo) > MAX_DEMO_ID:
            raise PlaybackError(f"load needs a demo id of 1 to {MAX_DEMO_ID} characters")
        return PlaybackState(demo=demo, position=0.0, playing=False, rate=1.0, at=at)
    if action not in ACTIONS:
        raise PlaybackError(f"unknown demo action {action!r}: use {', '.join(ACTIONS)}")
    if state.demo is None:
        raise PlaybackError("no demo is loaded in this room")
    here = state.position_at(at)
    if action == "play":
        return replace(state, position=here, playing=True, at=at)
    if action == "pause":
        return replace(state, position=here, playing=False, at=at)
    if action == "seek":
        if position is None or not 0.0 <= position < 1e7:
            raise PlaybackError("seek needs a position in seconds, 0 or more")
        return replace(state, position=position, at=at)
    if rate is None or not MIN_RATE <= rate <= MAX_RATE:
        raise PlaybackError(f"rate must be between {MIN_RATE} and {MAX_RATE}")
    return replace(state, position=here, rate=rate, at=at)
