"""The awareness table a room keeps for its clients, with y-protocols' rules.

pycrdt's ``Awareness`` is meant for a peer that has a local state, and its
``encode_awareness_update`` writes a string's character count where lib0
expects its UTF-8 byte length, so a name like "José" corrupts the message for
every Yjs client. The server only needs the table and the clock rules, and it
keeps each state as the JSON text it arrived in, so what it sends a late joiner
is byte for byte what the owner sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from pycrdt import write_message, write_var_uint

from .protocol import ProtocolError, Reader

_NULL = "null"


@dataclass(slots=True)
class ClientState:
    clock: int
    #: The state as JSON text, exactly as the client sent it; "null" once removed.
    state: str
    last_updated: float


@dataclass(slots=True)
class AwarenessChange:
    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)


_json_decoder = msgspec.json.Decoder()


def decode_awareness_update(update: bytes) -> list[tuple[int, int, str]]:
    """Decode ``[(client_id, clock, state_json)]``, checking every state is JSON."""
    reader = Reader(update)
    count = reader.var_uint()
    entries: list[tuple[int, int, str]] = []
    for _ in range(count):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        state = reader.var_string()
        try:
            _json_decoder.decode(state)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"awareness state of client {client_id} is not JSON") from exc
        entries.append((client_id, clock, state))
    if not reader.at_end():
        raise ProtocolError("trailing bytes after awareness update")
    return entries


def encode_awareness_update(entries: list[tuple[int, int, str]]) -> bytes:
    """lib0 encoding with UTF-8 byte lengths, as y-protocols writes it."""
    parts = [write_var_uint(len(entries))]
    for client_id, clock, state in entries:
        parts.append(write_var_uint(client_id))
        parts.append(write_var_uint(clock))
        parts.append(write_message(state.encode("utf-8")))
    return b"".join(parts)


class AwarenessTable:
    """Remote awareness states of one room (the server has no state of its own)."""

    __slots__ = ("_clients", "_clock")

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clients: dict[int, ClientState] = {}
        self._clock = clock or time.monotonic

    def __len__(self) -> int:
        return sum(1 for c in self._clients.values() if c.state != _NULL)

    def states(self) -> dict[int, str]:
        return {cid: c.state for cid, c in self._clients.items() if c.state != _NULL}

    def apply(self, entries: list[tuple[int, int, str]]) -> AwarenessChange:
        """Apply decoded entries with y-protocols' ``applyAwarenessUpdate`` rules."""
        now = self._clock()
        change = AwarenessChange()
        clients = self._clients
        for client_id, clock, state in entries:
            current = clients.get(client_id)
            is_null = state == _NULL
            has_state = current is not None and current.state != _NULL
            current_clock = 0 if current is None else current.clock
            if current_clock < clock or (current_clock == clock and is_null and has_state):
                clients[client_id] = ClientState(clock, state, now)
                if current is None and not is_null:
                    change.added.append(client_id)
                elif current is not None and is_null:
                    if has_state:
                        change.removed.append(client_id)
                elif not is_null:
                    change.updated.append(client_id)
        return change

    def remove(self, client_ids: list[int] | set[int]) -> bytes | None:
        """Drop the states of clients that left; the encoded update announces it."""
        gone: list[tuple[int, int, str]] = []
        for client_id in client_ids:
            current = self._clients.get(client_id)
            if current is not None and current.state != _NULL:
                # Same clock with a null state: y-protocols peers remove it.
                current.state = _NULL
                current.last_updated = self._clock()
                gone.append((client_id, current.clock, _NULL))
        return encode_awareness_update(gone) if gone else None

    def outdated(self, timeout: float) -> list[int]:
        """Clients that have not renewed their state within ``timeout`` seconds."""
        limit = self._clock() - timeout
        return [
            cid for cid, c in self._clients.items() if c.state != _NULL and c.last_updated < limit
        ]

    def forget_removed(self, older_than: float) -> None:
        """Drop tombstones of clients gone for ``older_than`` seconds.

        A removed client's clock is kept for a while so that a late message of
        it (an older clock) cannot bring it back; after that it only costs memory.
        """
        limit = self._clock() - older_than
        self._clients = {
            cid: c
            for cid, c in self._clients.items()
            if c.state != _NULL or c.last_updated >= limit
        }

    def encode_all(self) -> bytes | None:
        """Every known state, for a client that just joined or asked for them."""
        entries = [(cid, c.clock, c.state) for cid, c in self._clients.items() if c.state != _NULL]
        return encode_awareness_update(entries) if entries else None
