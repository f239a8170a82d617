"""The authoritative playback state of a room's demo, kept by the server.

The presenter's commands change one small state, ``{demo, position, playing,
rate, at, ...}``, and everyone derives what to show from it and their estimate
of the server clock: at server time ``t`` the demo is at ``position + (t - at)
* rate`` while playing (never past its end). A change takes effect at ``at``, a
little in the future, so that every viewer applies it at the same moment
instead of when the message happens to reach them.

A walkthrough's position is its step's index: it moves by ``next``/``prev``
or a seek to a step, not by the clock, so it cannot be played. A recording's
position is in seconds; a seek may name a marker instead of a time.

``mode`` is ``live`` (everyone follows the presenter) or ``self-paced`` (each
viewer plays the loaded demo on their own and their progress is kept).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .timeline import Timeline

#: How far ahead of now (ms) a change is scheduled: enough for it to reach everyone.
LEAD_MS = 150.0
MIN_RATE = 0.5
MAX_RATE = 2.0
ACTIONS = ("load", "copy", "unload", "play", "pause", "seek", "rate", "next", "prev", "mode")
MODES = ("live", "self-paced")


class PlaybackError(ValueError):
    """A command that cannot apply (no demo loaded, a rate out of range...); told to its sender."""


@dataclass(frozen=True, slots=True)
class PlaybackState:
    demo: str | None
    #: Seconds into a recording, or a walkthrough's step index, at server time ``at``.
    position: float
    playing: bool
    rate: float
    #: Server time (ms since the epoch) at which this state takes effect.
    at: float
    kind: Literal["walkthrough", "recording", ""] = ""
    #: The end of the timeline (last step index, or seconds).
    duration: float = 0.0
    mode: Literal["live", "self-paced"] = "live"

    def position_at(self, now_ms: float) -> float:
        if not self.playing or now_ms <= self.at:
            return self.position
        return min(self.position + (now_ms - self.at) / 1000.0 * self.rate, self.duration)


IDLE = PlaybackState(demo=None, position=0.0, playing=False, rate=1.0, at=0.0)


def load_state(timeline: Timeline, now_ms: float) -> PlaybackState:
    """A demo freshly loaded: at its start, paused, live."""
    return PlaybackState(
        demo=timeline.demo,
        position=0.0,
        playing=False,
        rate=1.0,
        at=now_ms + LEAD_MS,
        kind=timeline.kind,
        duration=timeline.duration,
    )


def apply(
    state: PlaybackState,
    timeline: Timeline | None,
    action: str,
    now_ms: float,
    *,
    position: float | None = None,
    step: str | None = None,
    marker: str | None = None,
    rate: float | None = None,
    mode: str | None = None,
) -> PlaybackState:
    """The state after one command (other than ``load``), effective ``LEAD_MS`` from now."""
    at = now_ms + LEAD_MS
    if action not in ACTIONS or action in ("load", "copy"):
        raise PlaybackError(f"unknown demo action {action!r}: use {', '.join(ACTIONS)}")
    if state.demo is None or timeline is None:
        raise PlaybackError("no demo is loaded in this room")
    if action == "unload":
        return replace(IDLE, at=at)
    here = state.position_at(at)
    walkthrough = timeline.kind == "walkthrough"
    if action == "play":
        if walkthrough:
            raise PlaybackError("a walkthrough moves by steps: use next, prev or seek to a step")
        if here >= state.duration:
            here = 0.0  # playing a finished recording starts it again, as players do
        return replace(state, position=here, playing=True, at=at)
    if action == "pause":
        return replace(state, position=here, playing=False, at=at)
    if action in ("next", "prev"):
        if not walkthrough:
            raise PlaybackError("next and prev move between a walkthrough's steps")
        target = round(here) + (1 if action == "next" else -1)
        if not 0 <= target <= state.duration:
            raise PlaybackError(
                "already at the last step" if target > 0 else "already at the first step"
            )
        return replace(state, position=float(target), at=at)
    if action == "seek":
        return replace(state, position=_seek_target(timeline, position, step, marker), at=at)
    if action == "mode":
        if mode not in MODES:
            raise PlaybackError(f"mode must be one of {', '.join(MODES)}")
        return replace(
            state,
            position=here,
            playing=False if mode == "self-paced" else state.playing,
            mode=mode,
            at=at,
        )  # type: ignore[arg-type]
    if rate is None or not MIN_RATE <= rate <= MAX_RATE:
        raise PlaybackError(f"rate must be between {MIN_RATE} and {MAX_RATE}")
    return replace(state, position=here, rate=rate, at=at)


def _seek_target(
    timeline: Timeline, position: float | None, step: str | None, marker: str | None
) -> float:
    given = sum(x is not None for x in (position, step, marker))
    if given != 1:
        raise PlaybackError(
            "seek needs exactly one of position (seconds), step (id) or marker (label)"
        )
    if step is not None:
        index = timeline.step_index(step)
        if index is None:
            raise PlaybackError(f"no step {step!r} in this demo")
        return float(index)
    if marker is not None:
        t = timeline.marker_time(marker)
        if t is None:
            raise PlaybackError(f"no marker {marker!r} in this demo")
        return t
    assert position is not None
    if not 0.0 <= position <= timeline.duration:
        unit = "step index" if timeline.kind == "walkthrough" else "seconds"
        raise PlaybackError(f"seek position must be from 0 to {timeline.duration:g} ({unit})")
    if timeline.kind == "walkthrough" and position != int(position):
        raise PlaybackError("a walkthrough's position is a whole step index")
    return position
