"""Demos: the format (walkthroughs and recordings), importers, and the playback clock (issue 7)."""

from .anchors import AnchoredHighlight, anchor_highlights
from .asciicast import AsciicastError, export_asciicast, import_asciicast, parse_asciicast
from .clock import ClockSync
from .codetour import TourError, import_tour
from .follower import Follower
from .format import (
    Demo,
    DemoError,
    Problem,
    dump_demo,
    files_at_steps,
    highlight_range,
    load_demo,
    parse_demo,
    validate_demo,
)
from .playback import IDLE, PlaybackError, PlaybackState, apply, load_state
from .recorder import Recorder
from .replay import recording_doc_at, recording_files_at, recording_output_at
from .timeline import Timeline, timeline_of
from .workspace import workspace_at

__all__ = [
    "IDLE",
    "AnchoredHighlight",
    "AsciicastError",
    "ClockSync",
    "Demo",
    "DemoError",
    "Follower",
    "PlaybackError",
    "PlaybackState",
    "Problem",
    "Recorder",
    "Timeline",
    "TourError",
    "anchor_highlights",
    "apply",
    "dump_demo",
    "export_asciicast",
    "files_at_steps",
    "highlight_range",
    "import_asciicast",
    "import_tour",
    "load_demo",
    "load_state",
    "parse_asciicast",
    "parse_demo",
    "recording_doc_at",
    "recording_files_at",
    "recording_output_at",
    "timeline_of",
    "validate_demo",
    "workspace_at",
]
