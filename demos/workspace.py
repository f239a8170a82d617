"""The demo's files at a point of its timeline, as the room receives them on a copy."""

from __future__ import annotations

from .format import Demo, Step, files_at_steps
from .replay import recording_files_at


def workspace_at(demo: Demo, position: float) -> tuple[dict[str, str], Step | None]:
    """The files at ``position`` (a step index, or seconds) and the step there, if any."""
    if demo.steps is None:
        return recording_files_at(demo, position), None
    index = min(max(round(position), 0), len(demo.steps) - 1)
    for i, files in enumerate(files_at_steps(demo)):
        if i == index:
            return files, demo.steps[index]
    return dict(demo.files), None
