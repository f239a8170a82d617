"""A room's demo commands, from its presenters: checked, then done one at a time, in order.

Why a queue: a load or a copy waits on the demo library (and, with several
nodes, every command waits on the shared record, ``rooms.shareddemo``); a
presenter's next command must not overtake it, or "load, then play" could play
the demo that was loaded before. What a command makes of the demo is a
``DemoChange``, which the room shows (``Room.adopt_demo``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import demos

from . import extension
from .access import a_or_an, can_control_demo
from .connection import Connection
from .shareddemo import DemoChange

if TYPE_CHECKING:
    from .room import Room

log = logging.getLogger("opencode_live.rooms")


class DemoCommands:
    """One room's queue of demo commands (``Room.demo_commands``)."""

    def __init__(self, room: Room) -> None:
        self.room = room
        #: Commands that came while one waits (None: none waits).
        self._waiting: list[tuple[Connection, extension.DemoControl]] | None = None

    def control(self, conn: Connection, msg: extension.DemoControl) -> None:
        """A presenter's command; everyone else is refused, whatever their page shows."""
        if not can_control_demo(conn.person, conn.role):
            who = a_or_an(conn.person.role.replace("_", " "))
            self.room.notify(
                conn,
                "error",
                "permission-denied",
                "controlling a demo needs an instructor or teaching assistant who can edit "
                f"this room; you are {who} and {conn.role.with_article} here",
            )
            return
        if self._waiting is not None:  # a command is waiting on something: keep the order
            self._waiting.append((conn, msg))
            return
        if self.room.cluster is not None or msg.action in ("load", "copy"):
            # Loads and copies wait on the library; with other nodes, every command
            # waits on the shared record.
            self._waiting = []
            self.room.spawn(self._in_order(self._command(conn, msg)))
            return
        change = self._playback_change(conn, msg)
        if change is not None:
            self.room.adopt_demo(change)

    async def _in_order(self, work: Awaitable[None]) -> None:
        """Do a command that waits, then the commands that came in meanwhile."""
        try:
            await work
        finally:
            waiting, self._waiting = self._waiting or [], None
            for index, (sender, msg) in enumerate(waiting):
                if sender in self.room.connections:
                    self.control(sender, msg)
                if self._waiting is not None:  # another wait: it replays the rest
                    self._waiting.extend(waiting[index + 1 :])
                    break

    async def _command(self, conn: Connection, msg: extension.DemoControl) -> None:
        command: Callable[[], DemoChange | None] | None
        if msg.action == "load":
            command = await self._load_command(conn, msg.demo)
        elif msg.action == "copy":
            command = await self._copy_command(conn)
        else:
            command = partial(self._playback_change, conn, msg)
        if command is None:
            return
        if self.room.cluster is None:
            change = command()
            if change is not None:
                self.room.adopt_demo(change)
        elif not await self.room.cluster.demo.commit(command):
            self.room.notify(
                conn,
                "error",
                "demo-busy",
                "the demo kept changing on other nodes: look at where it is and try again",
            )

    def _playback_change(self, conn: Connection, msg: extension.DemoControl) -> DemoChange | None:
        try:
            state = demos.apply(
                self.room.playback,
                self.room.timeline,
                msg.action,
                extension.server_time_ms(),
                position=msg.position,
                step=msg.step,
                marker=msg.marker,
                rate=msg.rate,
                mode=msg.mode,
            )
        except demos.PlaybackError as exc:
            self.room.notify(conn, "error", "bad-demo-command", str(exc))
            return None
        if state.demo is None:
            return DemoChange(state, conn.person.name, None, None)
        return DemoChange(state, conn.person.name, self.room.highlights, self.room.timeline)

    async def _load_command(
        self, conn: Connection, demo_id: str | None
    ) -> Callable[[], DemoChange] | None:
        """Look the demo up in the library (its steps, markers, length), to load it."""
        if not demo_id or len(demo_id) > 128:
            self.room.notify(conn, "error", "bad-demo-command", "load needs a demo id")
            return None
        if self.room.library is None:
            self.room.notify(conn, "error", "unavailable", "this server has no demo library")
            return None
        try:
            timeline = await self.room.library.timeline(demo_id)
        except Exception as exc:  # the store is down: say so, change nothing
            log.warning("demo lookup failed", extra={"room": self.room.id, "error": str(exc)})
            self.room.notify(
                conn, "error", "unavailable", f"the demo library cannot be read now: {exc}"
            )
            return None
        if timeline is None:
            self.room.notify(
                conn, "error", "no-such-demo", f"there is no demo {demo_id!r} in the library"
            )
            return None
        name = conn.person.name

        def load() -> DemoChange:
            state = demos.load_state(timeline, extension.server_time_ms())
            return DemoChange(state, name, None, timeline, loads=True)

        return load

    async def _copy_command(self, conn: Connection) -> Callable[[], DemoChange | None] | None:
        """Put the demo's files at the room's position into the room, highlights anchored.

        So that the class can work on the code the demo has reached: the files
        become ordinary shared files (one CRDT change everyone receives; the
        room's other files stay), and
        the step's highlights become Yjs relative positions in them, which
        follow the code as people edit it.
        """
        if self.room.cluster is not None:
            await self.room.cluster.demo.settled()
        state = self.room.playback
        if state.demo is None or self.room.library is None:
            self.room.notify(conn, "error", "bad-demo-command", "no demo is loaded in this room")
            return None
        try:
            demo = await self.room.library.demo(state.demo)
        except Exception as exc:
            self.room.notify(
                conn, "error", "unavailable", f"the demo library cannot be read now: {exc}"
            )
            return None
        if demo is None:
            self.room.notify(conn, "error", "no-such-demo", f"demo {state.demo!r} left the library")
            return None
        position = state.position_at(extension.server_time_ms())
        try:
            files, step = demos.workspace_at(demo, position)
        except demos.PlaybackError as exc:
            self.room.notify(conn, "error", "bad-demo-command", str(exc))
            return None
        update = self.room.document.put_files(files)
        if update is not None:
            try:
                await self.room.write(update, conn.person.user_id)
            except ConnectionError as exc:
                self.room.notify(conn, "error", "not-saved", str(exc))
                return None
        anchored = demos.anchor_highlights(
            self.room.document.files, step.highlights if step else []
        )
        highlights = extension.DemoHighlights(
            demo=state.demo,
            step=step.id if step else None,
            items=[
                extension.AnchoredHighlight(file=a.file, start=a.start, end=a.end, note=a.note)
                for a in anchored
            ],
        )

        def copied() -> DemoChange | None:
            if self.room.playback.demo != highlights.demo:  # unloaded or replaced meanwhile
                self.room.notify(conn, "error", "bad-demo-command", "the demo changed meanwhile")
                return None
            return DemoChange(
                self.room.playback, self.room.playback_by, highlights, self.room.timeline
            )

        return copied
