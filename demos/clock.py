"""Client-side estimate of the server clock, NTP-style (issue 7, synchronized playback).

A viewer shows a demo where the presenter is only if it knows the server's
time: a ``demo.state`` says where the demo is *at server time* ``at``. Local
clocks can be off by seconds, so every client probes the server with
``ping``/``pong`` on the room extension channel and keeps an estimate of the
offset between its clock and the server's.

The algorithm (the web page mirrors it exactly; keep the two in step):

* A sample is one ping/pong: the local send time ``t0``, the ``server_time``
  in the pong, and the local receive time ``t1``, all in milliseconds.
  ``delay = t1 - t0`` (the round trip) and
  ``offset = server_time - (t0 + t1) / 2`` (server minus local clock,
  assuming the two legs of the trip take equally long).
* The most recent ``WINDOW`` (16) samples are kept. The estimate is the median
  offset of the ``BEST`` (3) samples with the lowest delay in that window (the
  newest wins a tie). Why the lowest delay: a sample's offset error is at most
  half its delay's excess over the true round trip, so a sample that queued
  behind other traffic, or met a jittery hop, is simply outvoted; the median of
  three keeps one lucky-but-wrong sample from moving the estimate. What no
  probe can see is a *fixed* asymmetry of the two legs: it shifts the estimate
  by half the difference, whatever is done.
* Schedule: a burst of ``BURST_COUNT`` (6) pings ``BURST_INTERVAL_MS`` (50 ms)
  apart when the socket opens (a usable estimate within a third of a second),
  then one ping every ``REFRESH_INTERVAL_MS`` (2 s): the window then spans
  about 30 s, short enough to follow a drifting clock and long enough to hold
  a few quiet-network samples.
* Until the first pong, the ``server_time`` of the server's ``hello`` gives a
  rough offset (``seed``): late by the one-way delay, better than nothing.

Pure logic: no sockets, no clock reads; the caller passes every time in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

#: Samples kept (the most recent ones).
WINDOW = 16
#: The offset is the median of this many lowest-delay samples in the window.
BEST = 3
#: Pings sent when the socket opens...
BURST_COUNT = 6
#: ...this far apart (ms)...
BURST_INTERVAL_MS = 50.0
#: ...then one every this many ms for as long as the socket is open.
REFRESH_INTERVAL_MS = 2000.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One ping/pong: local send time, server time in the pong, local receive time (ms)."""

    t0: float
    server_time: float
    t1: float

    @property
    def delay(self) -> float:
        """The round trip: an upper bound on twice this sample's offset error."""
        return self.t1 - self.t0

    @property
    def offset(self) -> float:
        """Server clock minus local clock, if both legs took equally long."""
        return self.server_time - (self.t0 + self.t1) / 2.0


def ping_delay(sent: int) -> float:
    """Milliseconds to wait before the next ping, when ``sent`` pings have gone already.

    The first ping goes at once; the burst's others ``BURST_INTERVAL_MS`` apart;
    after the burst, one every ``REFRESH_INTERVAL_MS``.
    """
    if sent <= 0:
        return 0.0
    if sent < BURST_COUNT:
        return BURST_INTERVAL_MS
    return REFRESH_INTERVAL_MS


class ClockSync:
    """The estimated offset of the server clock from this client's clock."""

    def __init__(self, window: int = WINDOW, best: int = BEST) -> None:
        if window < 1 or best < 1:
            raise ValueError("window and best must be at least 1")
        self.best = best
        self._samples: deque[Sample] = deque(maxlen=window)
        self._offset: float | None = None
        self._seed: float | None = None

    def add(self, t0: float, server_time: float, t1: float) -> Sample | None:
        """Feed one ping/pong; returns the sample, or None if it cannot be right.

        A sample with a negative round trip (the local clock was set back
        meanwhile) or a value that is not a number is dropped: one bad sample
        must not move the estimate.
        """
        if not all(math.isfinite(x) for x in (t0, server_time, t1)) or t1 < t0:
            return None
        sample = Sample(t0, server_time, t1)
        self._samples.append(sample)
        self._offset = self._estimate()
        return sample

    def seed(self, server_time: float, local_receive: float) -> None:
        """A rough offset from the server's ``hello``, used only until the first sample."""
        if math.isfinite(server_time) and math.isfinite(local_receive):
            self._seed = server_time - local_receive

    def _estimate(self) -> float:
        # newest first, so that a stable sort by delay lets the newest win a tie
        ranked = sorted(reversed(self._samples), key=lambda s: s.delay)[: self.best]
        offsets = sorted(s.offset for s in ranked)
        n = len(offsets)
        mid = n // 2
        return offsets[mid] if n % 2 else (offsets[mid - 1] + offsets[mid]) / 2.0

    @property
    def synced(self) -> bool:
        """At least one ping/pong has come back."""
        return self._offset is not None

    @property
    def offset(self) -> float | None:
        """Server clock minus local clock (ms): the sampled estimate, else the seed, else None."""
        return self._offset if self._offset is not None else self._seed

    @property
    def delay(self) -> float | None:
        """The lowest round trip in the window (ms): how good the estimate can be."""
        return min((s.delay for s in self._samples), default=None)

    @property
    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._samples)

    def server_now(self, local_now: float) -> float:
        """The server's time now, by the estimate (the local time itself with none yet)."""
        offset = self.offset
        return local_now + (offset if offset is not None else 0.0)


__all__ = [
    "BEST",
    "BURST_COUNT",
    "BURST_INTERVAL_MS",
    "REFRESH_INTERVAL_MS",
    "WINDOW",
    "ClockSync",
    "Sample",
    "ping_delay",
]
