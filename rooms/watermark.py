"""Which of a room's log sequence numbers a node holds: the gap-free watermark.

Every update a room commits gets the next ``seq`` of the room's durable log
(gap-free, in commit order, whichever node committed it). A node sharing the
room with others applies its own commits at once and receives the others'
from the bus, in any order and possibly not at all (a dropped subscription, a
Redis restart). This class is the pure bookkeeping of that: ``contiguous`` is
the highest seq such that every seq up to it is in the node's document; seqs
applied beyond it (own commits that overtook a remote one) are remembered so
they are not applied twice; remote items that arrive past a gap are held back
and released, in order, once the gap is filled (by the missing message, by an
own commit or by a catch-up from the log). No I/O, no clock: unit-tested alone.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Watermark(Generic[T]):
    def __init__(self, contiguous: int = 0) -> None:
        #: Every seq <= contiguous is applied.
        self.contiguous = contiguous
        #: Seqs > contiguous that are applied already (own commits past a gap).
        self._ahead: set[int] = set()
        #: Remote items > contiguous + 1 waiting for the gap before them.
        self._held: dict[int, T] = {}
        #: Highest seq known to exist (from a message, a commit or a head notice).
        self.known = contiguous

    @property
    def gap(self) -> bool:
        """Some seq below a known one is missing: a catch-up may be needed."""
        return self.known > self.contiguous

    @property
    def held(self) -> int:
        return len(self._held)

    def has(self, seq: int) -> bool:
        return seq <= self.contiguous or seq in self._ahead

    def committed(self, seq: int) -> list[tuple[int, T]]:
        """This node applied ``seq`` itself; returns held items now deliverable, in order."""
        self.known = max(self.known, seq)
        if self.has(seq):
            return []
        self._held.pop(seq, None)  # our own copy went out: a remote one is a duplicate
        if seq != self.contiguous + 1:
            self._ahead.add(seq)
            return []
        self.contiguous = seq
        return self._advance()

    def offer(self, seq: int, item: T) -> list[tuple[int, T]]:
        """A remote ``item`` with ``seq``: what to deliver now, in order (maybe nothing).

        A seq applied or held already is a duplicate and yields nothing.
        """
        self.known = max(self.known, seq)
        if self.has(seq) or seq in self._held:
            return []
        if seq != self.contiguous + 1:
            self._held[seq] = item
            return []
        self.contiguous = seq
        return [(seq, item), *self._advance()]

    def expect(self, seq: int) -> None:
        """``seq`` exists in the log (a head notice, the log's last_seq)."""
        self.known = max(self.known, seq)

    def jump(self, upto: int) -> list[tuple[int, T]]:
        """Everything up to ``upto`` is applied now (a snapshot); held items past it follow."""
        if upto <= self.contiguous:
            return []
        self.contiguous = upto
        self.known = max(self.known, upto)
        self._ahead = {seq for seq in self._ahead if seq > upto}
        self._held = {seq: item for seq, item in self._held.items() if seq > upto}
        return self._advance()

    def forget_held(self) -> None:
        """Drop what is held back (too much of it): the catch-up reads it from the log."""
        self._held.clear()

    def _advance(self) -> list[tuple[int, T]]:
        released: list[tuple[int, T]] = []
        # Bounded: each turn removes one entry from _ahead or _held.
        while True:
            following = self.contiguous + 1
            if following in self._ahead:
                self._ahead.discard(following)
            elif following in self._held:
                released.append((following, self._held.pop(following)))
            else:
                return released
            self.contiguous = following
