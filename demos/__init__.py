"""Demos: the format (walkthroughs and recordings), importers, and the playback clock (issue 7)."""

from .asciicast import AsciicastError, export_asciicast, import_asciicast, parse_asciicast
from .codetour import TourError, import_tour
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
from .playback import IDLE, PlaybackError, PlaybackState, apply

__all__ = [
    "IDLE",
    "AsciicastError",
    "Demo",
    "DemoError",
    "PlaybackError",
    "PlaybackState",
    "Problem",
    "TourError",
    "apply",
    "dump_demo",
    "export_asciicast",
    "files_at_steps",
    "highlight_range",
    "import_asciicast",
    "import_tour",
    "load_demo",
    "parse_asciicast",
    "parse_demo",
    "validate_demo",
]
