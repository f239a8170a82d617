"""Settings: flag, then environment, then default; bad values named."""

from __future__ import annotations

import argparse

import pytest

from server.cli import build_parser
from server.config import Settings, load_settings, settings_table


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_defaults():
    s = load_settings(parse(), env={})
    assert s == Settings()


def test_flag_beats_env_beats_default():
    env = {"PORT": "9000", "OPENCODE_LIVE_MAX_ROOMS": "5"}
    s = load_settings(parse("--port", "9100"), env=env)
    assert s.port == 9100 and s.max_rooms == 5


def test_bad_env_value_is_named():
    with pytest.raises(ValueError, match="OPENCODE_LIVE_MAX_ROOMS"):
        load_settings(parse(), env={"OPENCODE_LIVE_MAX_ROOMS": "many"})


def test_inconsistent_limits_refused():
    with pytest.raises(ValueError, match="send_queue_bytes"):
        load_settings(parse("--max-message-bytes", "1000000", "--send-queue-bytes", "1000"), env={})


def test_every_setting_is_in_the_table():
    table = settings_table()
    for flag in ("--host", "--port", "--log-level", "--max-message-bytes", "--send-queue-bytes"):
        assert f"`{flag}`" in table


def test_readme_lists_the_settings_exactly():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert settings_table() in readme, (
        "README's settings table is stale: paste `opencode-live settings`"
    )
