"""Typed keys for what the application holds (aiohttp's AppKey)."""

from __future__ import annotations

from aiohttp import web

from rooms import RoomRegistry
from store import Store

from .auth import Gate
from .config import Settings
from .demolibrary import DemoLibrary
from .ratelimit import HourlyLimit
from .roomsocket import RoomSockets
from .runs import RunService
from .tokens import TokenVerifier

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", RoomRegistry)
SOCKETS = web.AppKey("sockets", RoomSockets)
STORE = web.AppKey("store", Store)
VERIFIER = web.AppKey("verifier", TokenVerifier)
GATE = web.AppKey("gate", Gate)
API_LIMIT = web.AppKey("api_limit", HourlyLimit)
RUN_LIMIT = web.AppKey("run_limit", HourlyLimit)
RUNS = web.AppKey("runs", RunService)
DEMOS = web.AppKey("demos", DemoLibrary)
