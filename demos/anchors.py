"""Highlights anchored in the CRDT text, so they follow the code as it is edited.

CodeTour anchors a step to line numbers, which drift as soon as anyone edits
above them. A highlight placed in a room is instead turned into two Yjs
relative positions (pycrdt's ``StickyIndex``): each names the character it
sits next to, not an offset, so text typed before it moves it along and text
deleted around it shrinks it. The encoding is Yjs's own
(``Y.encodeRelativePosition``), so the page resolves the same bytes with
``Y.createAbsolutePositionFromRelativePosition`` against its copy of the room.

Relative positions count in UTF-16 code units, as Yjs does (and so does
pycrdt's ``sticky_index``, while its ``Text`` edits count UTF-8 bytes);
highlights count in characters, and the conversion happens here only.
Resolving is left to Yjs itself (the page): pycrdt 0.14's
``StickyIndex.get_index`` mixes byte and UTF-16 counts for text inserted after
creation, while the positions it *creates* are right. pycrdt panics on a
position after the last character with the start-side association, so a
highlight ending at the end of a file sticks to the character before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import Assoc, Map, Text

from .format import Highlight, highlight_range


@dataclass(frozen=True, slots=True)
class AnchoredHighlight:
    file: str
    #: Yjs-encoded relative positions of the first character and of the end.
    start: bytes
    end: bytes
    note: str | None = None


def _utf16_offset(text: str, chars: int) -> int:
    return len(text[:chars].encode("utf-16-le")) // 2


def _char_offset(text: str, units: int) -> int:
    return len(text.encode("utf-16-le")[: 2 * units].decode("utf-16-le", errors="ignore"))


def anchor_highlights(files: Map, highlights: list[Highlight]) -> list[AnchoredHighlight]:
    """Anchor each highlight that resolves in ``files`` (a ``Y.Map`` of ``Y.Text``).

    The start sticks to the character after it and the end to the one before
    it, so typing at either edge does not widen the highlight.
    """
    anchored: list[AnchoredHighlight] = []
    for highlight in highlights:
        value = files.get(highlight.file)
        if not isinstance(value, Text):
            continue
        text = str(value)
        found = highlight_range(text, highlight)
        if found is None:
            continue
        begin, end = found
        start_assoc = Assoc.AFTER if begin < len(text) else Assoc.BEFORE
        start = value.sticky_index(_utf16_offset(text, begin), start_assoc)
        stop = value.sticky_index(_utf16_offset(text, end), Assoc.BEFORE)
        anchored.append(
            AnchoredHighlight(
                file=highlight.file, start=start.encode(), end=stop.encode(), note=highlight.note
            )
        )
    return anchored
