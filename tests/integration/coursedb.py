"""Helpers for the progress API tests: the sample course and the default achievement
catalogue loaded into a test's database through the real command line, and small
HTTP helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def cli(database_url: str, *args: str) -> None:
    """``opencode-live ARGS`` against the test's database; fails the test if it fails."""
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def load_sample(database_url: str) -> None:
    """courses/python-101 and progress/achievements.yaml, as an operator would load them."""
    cli(database_url, "course", "load", "courses/python-101")
    cli(database_url, "achievements", "load", "progress/achievements.yaml")


async def call(
    server: Any,
    method: str,
    path: str,
    who: dict[str, Any],
    tokens: Any,
    json: Any = None,
    data: Any = None,
) -> tuple[int, Any]:
    """One request as ``who`` (token claims); the status and the decoded JSON body."""
    async with aiohttp.ClientSession(headers=tokens.auth(**who)) as s:
        async with s.request(method, f"{server.http}{path}", json=json, data=data) as r:
            body = await r.json(content_type=None) if r.status != 204 else None
            return r.status, body
