"""The room document: one Yjs doc per room, a ``Y.Map`` named ``files`` of ``Y.Text``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Map, Text, TransactionEvent, get_state

from . import protocol
from .protocol import ProtocolError
from .split import split_update

FILES = "files"
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)
EMPTY_STATE_VECTOR = b"\x00"


class RoomDocument:
    """Applies updates, answers sync step 1 and edits files for the HTTP API.

    ``version`` counts applied updates. The answer to a new client (empty
    state vector) is encoded once per version and shared by every joiner of
    that version, so a burst of joiners costs one encoding, not one each.
    """

    def __init__(self) -> None:
        self.doc: Doc = Doc()
        self.files: Map = self.doc.get(FILES, type=Map)
        self.version = 0
        self._full_sync: tuple[int, int, list[bytes]] | None = None
        self._step1: tuple[int, bytes] | None = None

    @staticmethod
    def check_update(update: bytes) -> None:
        """Refuse an update that does not decode, without applying it.

        The room stores an update before applying it, so it is checked first:
        decoding its state vector reads the whole update, and accepts and
        refuses exactly what ``apply_update`` does (checked on 20,000 mutated
        updates), at about 1.5 us for a keystroke.
        """
        try:
            get_state(update)
        except _FATAL:
            raise
        except BaseException as exc:
            raise ProtocolError(f"invalid Yjs update: {exc}") from exc

    def adds_content(self, update: bytes) -> bool:
        """Whether ``update`` carries insertions the document does not have yet.

        A sync step 2 always repeats the sender's whole delete set, so a
        reconnecting reader's answer is not empty even when it changes nothing;
        this tells such an answer from one that would really add text.
        """
        ours = decode_state_vector(self.doc.get_state())
        theirs = decode_state_vector(get_state(update))
        return any(clock > ours.get(client, 0) for client, clock in theirs.items())

    def apply_update(self, update: bytes) -> None:
        """Apply a client's update; a malformed one raises and changes nothing."""
        if update == protocol.EMPTY_UPDATE:
            return
        try:
            self.doc.apply_update(update)
        except _FATAL:
            raise
        except BaseException as exc:  # pycrdt raises ValueError; a yrs panic is a BaseException
            raise ProtocolError(f"invalid Yjs update: {exc}") from exc
        self.version += 1

    def step1_message(self) -> bytes:
        """Sync step 1 carrying the room's state vector (cached per version)."""
        cached = self._step1
        if cached is not None and cached[0] == self.version:
            return cached[1]
        message = protocol.sync_step1(self.doc.get_state())
        self._step1 = (self.version, message)
        return message

    def sync_answer(self, state_vector: bytes, max_bytes: int) -> list[bytes]:
        """Messages answering a client's sync step 1: updates, then one step 2.

        A document bigger than ``max_bytes`` is sent as several update messages
        no larger than that, closed by a step 2: a slow y-websocket client then
        keeps receiving messages instead of hitting its 30-second watchdog.
        """
        if state_vector == EMPTY_STATE_VECTOR:
            cached = self._full_sync
            if cached is not None and cached[0] == self.version and cached[1] == max_bytes:
                return cached[2]
            messages = self._answer(self.doc.get_update(), max_bytes)
            self._full_sync = (self.version, max_bytes, messages)
            return messages
        try:
            update = self.doc.get_update(state_vector)
        except Exception as exc:
            raise ProtocolError(f"invalid state vector: {exc}") from exc
        return self._answer(update, max_bytes)

    @staticmethod
    def _answer(update: bytes, max_bytes: int) -> list[bytes]:
        # Leave room for the message header (type bytes and length prefix).
        pieces = split_update(update, max(64, max_bytes - 16))
        messages = [protocol.sync_update(piece) for piece in pieces[:-1]]
        messages.append(protocol.sync_step2(pieces[-1]))
        return messages

    # -- files, for the server-side document API ------------------------------

    def read_files(self) -> dict[str, str]:
        return {path: str(value) for path, value in self.files.items() if isinstance(value, Text)}

    def read_file(self, path: str) -> str | None:
        value = self.files.get(path)
        return str(value) if isinstance(value, Text) else None

    def put_file(self, path: str, content: str) -> bytes | None:
        """Write a file as a CRDT change; returns the update to send to clients.

        An existing file is changed by its differing middle only, so a
        collaborator typing at the start or end of the file keeps their edit.
        """

        return self._transact(lambda: _set_text(self.files, path, content))

    def replace_files(self, files: dict[str, str]) -> bytes | None:
        """Make the workspace hold exactly ``files``, as one CRDT change.

        Restoring a version is a new change on top of history, not a rewrite:
        clients receive it like any edit, and files that did not change keep
        their history (and whoever is typing in them keeps their cursor).
        """

        def edit() -> None:
            for path in [p for p in self.files.keys() if p not in files]:
                self.files.pop(path)
            for path, content in files.items():
                _set_text(self.files, path, content)

        return self._transact(edit)

    def put_files(self, files: dict[str, str]) -> bytes | None:
        """Write several files as one CRDT change, leaving the room's other files alone."""

        def edit() -> None:
            for path, content in files.items():
                _set_text(self.files, path, content)

        return self._transact(edit)

    def delete_file(self, path: str) -> bytes | None:
        """Remove a file; ``None`` when there was no such file."""
        if path not in self.files:
            return None
        return self._transact(lambda: self.files.pop(path))

    def _transact(self, edit: Callable[[], Any]) -> bytes | None:
        updates: list[bytes] = []

        def collect(event: TransactionEvent) -> None:
            updates.append(event.update)

        subscription = self.doc.observe(collect)
        try:
            with self.doc.transaction(origin="api"):
                edit()
        finally:
            self.doc.unobserve(subscription)
        update = updates[0] if updates else None
        if update is None or update == protocol.EMPTY_UPDATE:
            return None
        self.version += 1
        return update


def decode_state_vector(state: bytes) -> dict[int, int]:
    """A Yjs state vector (count, then client and clock pairs) as a mapping."""
    reader = protocol.Reader(state)
    return {reader.var_uint(): reader.var_uint() for _ in range(reader.var_uint())}


def files_of(state: bytes) -> dict[str, str]:
    """The files of a stored document state (a version, a snapshot)."""
    doc: Doc = Doc()
    doc.apply_update(state)
    files = doc.get(FILES, type=Map)
    return {path: str(value) for path, value in files.items() if isinstance(value, Text)}


def _set_text(files: Map, path: str, content: str) -> None:
    current = files.get(path)
    if not isinstance(current, Text):
        files[path] = Text(content)
        return
    old = str(current)
    if old == content:
        return
    start, old_end, new_end = _diff_bounds(old, content)
    if old_end > start:
        del current[_utf8_len(old[:start]) : _utf8_len(old[:old_end])]
    if new_end > start:
        current.insert(_utf8_len(old[:start]), content[start:new_end])


def _diff_bounds(old: str, new: str) -> tuple[int, int, int]:
    """Common prefix and suffix: the changed span is old[start:old_end] -> new[start:new_end]."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    old_end, new_end = len(old), len(new)
    while old_end > start and new_end > start and old[old_end - 1] == new[new_end - 1]:
        old_end -= 1
        new_end -= 1
    return start, old_end, new_end


def _utf8_len(text: str) -> int:
    # pycrdt's Text indexes UTF-8 bytes (yrs' default offset kind), not characters.
    return len(text.encode("utf-8"))
