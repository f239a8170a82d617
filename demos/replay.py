"""A recording demo at time ``t``: its workspace and its terminal, rebuilt from the demo alone.

Why start from a snapshot: replaying every update since the start makes a seek
an hour in as slow as the hour was long; the recorder leaves a snapshot of the
whole Yjs state every few seconds of activity, so a seek applies at most a few
seconds' worth of updates. Yjs updates are idempotent, so applying one that
the snapshot already holds (one recorded at the snapshot's very time) changes
nothing.

A recording with no snapshot at or before ``t`` (a hand-written one) starts
from its ``files``; its updates must then build on a document of its own.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from pycrdt import Doc, Map, Text

from crdt import FILES

from .format import Demo, Output, Recording, Update


def _recording(demo: Demo) -> Recording:
    if demo.recording is None:
        raise ValueError(f"{demo.title!r} is a walkthrough, not a recording")
    return demo.recording


def recording_doc_at(demo: Demo, t: float) -> Doc:
    """The workspace document at ``t`` seconds: latest snapshot at or before it, plus updates."""
    rec = _recording(demo)
    doc: Doc = Doc()
    snapshots = rec.snapshots
    times = [s.t for s in snapshots]
    index = bisect_right(times, t) - 1
    if index >= 0:
        since = snapshots[index].t
        doc.apply_update(snapshots[index].state)
    else:
        since = 0.0
        files = doc.get(FILES, type=Map)
        with doc.transaction():
            for path, text in demo.files.items():
                files[path] = Text(text)
    events = rec.events
    start = bisect_left([e.t for e in events], since)
    for event in events[start:]:
        if event.t > t:
            break
        if isinstance(event, Update):
            doc.apply_update(event.update)
    return doc


def recording_files_at(demo: Demo, t: float) -> dict[str, str]:
    """``{path: text}`` of the workspace at ``t`` seconds into a recording."""
    files = recording_doc_at(demo, t).get(FILES, type=Map)
    return {path: str(value) for path, value in files.items() if isinstance(value, Text)}


def recording_output_at(
    demo: Demo, t: float, *, run: str | None = None, streams: tuple[str, ...] | None = None
) -> str:
    """The terminal's text up to ``t``: every output chunk in order (optionally one run's,
    or some streams only: ``("stdout",)``)."""
    out: list[str] = []
    for event in _recording(demo).events:
        if event.t > t:
            break
        if not isinstance(event, Output):
            continue
        if run is not None and event.run != run:
            continue
        if streams is not None and event.stream not in streams:
            continue
        out.append(event.data)
    return "".join(out)
