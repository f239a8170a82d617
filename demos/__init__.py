"""Demos: the playback clock now; formats and recording follow (issue 7)."""

from .playback import IDLE, PlaybackError, PlaybackState, apply

__all__ = ["IDLE", "PlaybackError", "PlaybackState", "apply"]
