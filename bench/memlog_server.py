"""Our server with its durable log replaced by memory: persistence "off", for comparison.

    python bench/memlog_server.py --port PORT [serve flags]

Only benchmarks use it (``--server ours-memlog``): the same application, front
door and rooms as ``opencode-live serve``, with a Store stand-in that keeps the
log in a dict, so that the difference in the figures is what Postgres costs.
It is not a mode of the server: rooms here are gone when the process ends.
Who may enter a room is kept in memory too (users, rooms and their owners),
so the same token check and room roles apply as with Postgres.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402
from aiohttp import web  # noqa: E402

from server.app import create_app, start_site  # noqa: E402
from server.cli import build_parser  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.logs import setup_logging  # noqa: E402
from store import RoomInfo, RoomRecord, RoomStanding  # noqa: E402


@dataclass
class MemoryLog:
    """What the rooms use of ``store.Store``, in memory."""

    logs: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    users: dict[uuid.UUID, tuple[str, str, str, str | None]] = field(default_factory=dict)
    rooms: dict[str, RoomInfo] = field(default_factory=dict)

    async def append_updates(
        self, batch: list[tuple[str, bytes]], authors: list[uuid.UUID | None] | None = None
    ) -> list[int]:
        seqs = []
        for room_id, update in batch:
            log = self.logs.setdefault(room_id, [])
            seq = (log[-1][0] if log else 0) + 1
            log.append((seq, update))
            seqs.append(seq)
        return seqs

    async def load_room(self, room_id: str) -> RoomRecord:
        return RoomRecord(snapshot=None, snapshot_seq=0, updates=list(self.logs.get(room_id, [])))

    async def compact(self, room_id: str, upto_seq: int, state: bytes) -> bool:
        log = self.logs.get(room_id, [])
        self.logs[room_id] = [(upto_seq, state)] + [e for e in log if e[0] > upto_seq]
        return True

    # who may enter: what the gate and the room API use --------------------------

    async def upsert_user(
        self,
        user_id: uuid.UUID,
        username: str,
        display_name: str,
        role: str,
        cohort: str | None = None,
    ) -> uuid.UUID:
        self.users[user_id] = (username, display_name, role, cohort)
        return user_id

    async def room_standing(self, room_id: str, user_id: uuid.UUID) -> RoomStanding | None:
        room = self.rooms.get(room_id)
        return None if room is None else RoomStanding(room.owner, room.visibility, room.cohort)

    async def create_room(
        self,
        room_id: str,
        owner: uuid.UUID,
        *,
        title: str = "",
        visibility: str = "private",
        cohort: str | None = None,
    ) -> RoomInfo | None:
        if room_id in self.rooms:
            return None
        room = RoomInfo(room_id, title, owner, visibility, cohort, datetime.now(UTC))
        self.rooms[room_id] = room
        return room

    async def get_room(self, room_id: str) -> RoomInfo | None:
        return self.rooms.get(room_id)

    async def rooms_for(
        self, user_id: uuid.UUID, *, staff: bool, cohort: str | None, limit: int = 500
    ) -> list[tuple[RoomInfo, str | None]]:
        found = [
            r
            for r in self.rooms.values()
            if staff
            or r.owner == user_id
            or r.visibility == "public"
            or (r.visibility == "cohort" and r.cohort == cohort)
        ]
        found.sort(key=lambda r: r.created_at, reverse=True)
        return [(r, None) for r in found[:limit]]

    async def ping(self, timeout: float = 5.0) -> None:
        return None

    async def close(self) -> None:
        return None


async def main(argv: list[str]) -> None:
    settings = load_settings(build_parser().parse_args(["serve", *argv]))
    setup_logging(settings.log_level)
    app = await create_app(settings, store=MemoryLog())  # type: ignore[arg-type]
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    listener = await start_site(runner, settings.host, settings.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        listener.close()
        await runner.cleanup()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1:]))
