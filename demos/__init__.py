"""Demos: formats, recording and the playback clock (issue 7; nothing here yet)."""
