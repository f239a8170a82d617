"""A viewer's playhead: where to show the demo now, kept smooth and in step with the server.

The server broadcasts a small ``demo.state`` on every change only; between
changes each client computes the position itself from that state and its
estimate of the server clock (``demos.clock.ClockSync``). Jumping straight to
that computed *target* on every frame would make the playhead stutter each
time the clock estimate moves by a few milliseconds, and a state that reached
a slow viewer late would show as a jump. So the displayed position (*shown*)
chases the target instead, by a brief change of speed, and only seeks when it
is far off.

The algorithm (the web page mirrors it exactly; keep the two in step). On each
``tick(local_now)`` (every animation frame, say):

1. ``server_now = clock.server_now(local_now)``. Received states wait until
   their ``at`` (they are sent ``LEAD_MS`` = 150 ms early, so that everyone
   switches together); the newest whose ``at <= server_now`` is in force. The
   very first state (or a load of another demo) is in force at once.
2. ``target = min(position + (server_now - at) / 1000 * rate, duration)``
   while playing, else ``position``: the server's own formula
   (``PlaybackState.position_at``).
3. Not playing (paused, a walkthrough, no demo), the first state, or another
   demo: ``shown = target`` exactly.
4. Playing: ``elapsed`` = local seconds since the previous tick, but no more
   than ``(server_now - at) / 1000`` (the state has played only that long);
   ``ahead = shown + elapsed * rate`` (where the playhead would be at the
   nominal speed) and ``error = target - ahead``.
   If ``|error| > SEEK_THRESHOLD`` (0.3 s): ``shown = target`` (a seek).
   Otherwise ``nudge = 1 + clamp(GAIN * error, -MAX_NUDGE, +MAX_NUDGE)``
   (``GAIN`` = 5 per second of error, ``MAX_NUDGE`` = 0.1) and
   ``shown = shown + elapsed * rate * nudge``, but never past the target on
   the far side (a long frame must not overshoot). There is no dead band:
   every difference is corrected, small ones by running up to 10 % fast or
   slow for a moment (a 20 ms lag takes about 0.2 s to close, and nobody sees
   it).
5. ``shown`` is kept within ``[0, duration]``: never past the end.

A state that arrives after its ``at`` (a link slower than the lead) is
absorbed the same way: its target is already ahead of where the old state
left the playhead, which then catches up by a nudge, or a seek if far behind.

Pure logic: no sockets, no clock reads; times are passed in (milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .playback import PlaybackState

#: Speed correction per second of error: the playhead closes a gap with a time
#: constant of 1 / (GAIN * rate) seconds (0.2 s at rate 1), until the nudge caps.
GAIN = 5.0
#: The largest speed change used to close a gap: 10 % faster or slower.
MAX_NUDGE = 0.1
#: A gap (seconds, or steps) beyond which the playhead jumps instead of catching up.
SEEK_THRESHOLD = 0.3
#: States received but not yet in force (their ``at`` is ahead); more is a runaway.
MAX_PENDING = 16


class ServerClock(Protocol):
    def server_now(self, local_now: float) -> float: ...


def state_from_message(msg: Mapping[str, Any]) -> PlaybackState:
    """The ``demo.state`` message (a decoded MessagePack map) as a ``PlaybackState``."""
    kind = msg.get("kind") or ""
    mode = msg.get("mode") or "live"
    return PlaybackState(
        demo=msg.get("demo"),
        position=float(msg.get("position", 0.0)),
        playing=bool(msg.get("playing", False)),
        rate=float(msg.get("rate", 1.0)),
        at=float(msg.get("at", 0.0)),
        kind=kind,
        duration=float(msg.get("duration", 0.0)),
        mode=mode,
    )


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class Follower:
    """The displayed playhead of one viewer."""

    def __init__(self, clock: ServerClock | None = None) -> None:
        self.clock = clock
        #: The state in force (None: nothing received yet).
        self.state: PlaybackState | None = None
        #: What to show now (seconds, or a walkthrough's step index).
        self.shown = 0.0
        #: The last target computed: where the server says the demo is.
        self.target = 0.0
        #: How many times the playhead jumped because it was too far off (not counting
        #: states that are shown exactly: pauses, a first state, another demo).
        self.seeks = 0
        self._pending: list[PlaybackState] = []
        self._last_local: float | None = None
        self._fresh = False

    def update(self, state: PlaybackState | Mapping[str, Any]) -> None:
        """A ``demo.state`` arrived: it takes over at its ``at`` (at once if the first)."""
        if not isinstance(state, PlaybackState):
            state = state_from_message(state)
        # The server's newest word wins: anything pending for later is superseded.
        self._pending = [s for s in self._pending if s.at < state.at][-(MAX_PENDING - 1) :]
        self._pending.append(state)
        if self.state is None:
            self._take(self._pending.pop(0))

    def _take(self, state: PlaybackState) -> None:
        previous = self.state
        if previous is None or previous.demo != state.demo or previous.kind != state.kind:
            self._fresh = True
        self.state = state

    def _promote(self, server_now: float) -> None:
        while self._pending and self._pending[0].at <= server_now:
            self._take(self._pending.pop(0))

    @property
    def pending(self) -> tuple[PlaybackState, ...]:
        """States received but not yet in force."""
        return tuple(self._pending)

    def tick(self, local_now: float, server_now: float | None = None) -> float:
        """Advance the playhead to ``local_now`` (ms); returns what to show.

        ``server_now`` defaults to the clock's estimate at ``local_now``.
        """
        if server_now is None:
            server_now = self.clock.server_now(local_now) if self.clock is not None else local_now
        self._promote(server_now)
        last, self._last_local = self._last_local, local_now
        state = self.state
        if state is None:
            return self.shown
        target = self.target = state.position_at(server_now)
        if self._fresh or not state.playing or last is None:
            self._fresh = False
            shown = target
        else:
            # playing time since the last frame: not before the state took effect
            elapsed = max(0.0, min(local_now - last, server_now - state.at)) / 1000.0
            ahead = self.shown + elapsed * state.rate
            error = target - ahead
            if abs(error) > SEEK_THRESHOLD:
                shown = target
                self.seeks += 1
            else:
                nudge = _clamp(GAIN * error, -MAX_NUDGE, MAX_NUDGE)
                correction = elapsed * state.rate * nudge
                if abs(correction) > abs(error):  # a long frame: land on the target
                    correction = error
                shown = ahead + correction
        self.shown = _clamp(shown, 0.0, max(state.duration, 0.0))
        return self.shown


__all__ = [
    "GAIN",
    "MAX_NUDGE",
    "SEEK_THRESHOLD",
    "Follower",
    "ServerClock",
    "state_from_message",
]
