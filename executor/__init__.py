"""Runs of a room's code in a pool of containers (issue 6; nothing here yet)."""
