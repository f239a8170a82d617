"""What the server needs to know of a demo to control its playback: not its content.

A room's playback commands are checked against the demo's timeline (its steps,
its markers, its length) so that "next step" or "seek to chapter 3" is refused
with a reason instead of sending viewers somewhere that does not exist. The
demo's bulk (files, updates) never goes through the room: clients fetch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .format import Demo, Marker


@dataclass(frozen=True, slots=True)
class Timeline:
    demo: str
    title: str
    kind: Literal["walkthrough", "recording"]
    #: Step ids in document order (walkthroughs); a step's position is its index.
    steps: tuple[str, ...]
    #: ``(seconds, label)`` of each marker (recordings), in time order.
    markers: tuple[tuple[float, str], ...]
    #: Where the timeline ends: the last step's index, or the recording's length in seconds.
    duration: float

    def step_index(self, step_id: str) -> int | None:
        try:
            return self.steps.index(step_id)
        except ValueError:
            return None

    def marker_time(self, label: str) -> float | None:
        for t, name in self.markers:
            if name == label:
                return t
        return None


def timeline_of(demo_id: str, demo: Demo) -> Timeline:
    if demo.recording is not None:
        rec = demo.recording
        last = max((e.t for e in rec.events), default=0.0)
        return Timeline(
            demo=demo_id,
            title=demo.title,
            kind="recording",
            steps=(),
            markers=tuple((e.t, e.label) for e in rec.events if isinstance(e, Marker)),
            duration=max(rec.duration or 0.0, last),
        )
    steps = tuple(step.id for step in demo.steps or [])
    return Timeline(
        demo=demo_id,
        title=demo.title,
        kind="walkthrough",
        steps=steps,
        markers=(),
        duration=float(max(len(steps) - 1, 0)),
    )
