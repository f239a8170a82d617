"""Real Yjs updates for the store tests: a writer types into its own file of a room doc."""

from __future__ import annotations

from collections.abc import Iterable

from pycrdt import Doc, Map, Text


class Writer:
    """One client typing into ``files[path]``; each edit yields the update it made."""

    def __init__(self, path: str) -> None:
        self.doc = Doc()
        self.files = self.doc.get("files", type=Map)
        self.path = path
        self.count = 0

    def edit(self) -> bytes:
        before = self.doc.get_state()
        if self.path not in self.files:
            self.files[self.path] = Text()
        text = self.files[self.path]
        text += f"{self.count},"
        self.count += 1
        return self.doc.get_update(before)


def rebuild(updates: Iterable[bytes]) -> Doc:
    """A fresh doc with ``updates`` applied in the given order."""
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def files_of(doc: Doc) -> dict[str, str]:
    """The workspace as plain strings: what users would see."""
    return {path: str(text) for path, text in doc.get("files", type=Map).items()}


def state_vector(doc: Doc) -> dict[int, int]:
    """The doc's state vector decoded (client -> clock): equal iff the same edits are in.

    Compared decoded because the encoding lists clients in no fixed order.
    """
    data = doc.get_state()
    pos = 0

    def varuint() -> int:
        nonlocal pos
        value, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    return {varuint(): varuint() for _ in range(varuint())}
