"""Highlights anchored by the server (pycrdt) resolve in real Yjs, and follow edits there.

The page resolves the anchors with Yjs, so that is what checks them: a Node
script with the ``yjs`` package (``tests/node/relpos.mjs``).
"""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map, Text

from demos.anchors import anchor_highlights
from demos.format import Highlight, Position
from tests.conftest import need
from tests.integration.node_driver import node_available, resolve_in_yjs

SOURCE = "é😀 = 1\nfor i in range(3):\n    print(i)\nprint('done ✓')"


def _resolve(doc: Doc, pairs: list[tuple[bytes, bytes]]) -> list[str]:
    need(node_available(), "Node with tests/node's packages (npm ci in tests/node)")
    return resolve_in_yjs(doc.get_update(), "main.py", pairs)


def _utf8(text: str, chars: int) -> int:
    """pycrdt's Text edits count UTF-8 bytes."""
    return len(text[:chars].encode("utf-8"))


@pytest.fixture
def workspace() -> tuple[Doc, Text]:
    doc: Doc = Doc()
    files = doc.get("files", type=Map)
    files["main.py"] = Text(SOURCE)
    return doc, files["main.py"]


def test_anchors_resolve_to_the_highlighted_text_and_follow_edits(workspace):
    doc, text = workspace
    files = doc.get("files", type=Map)
    highlights = [
        Highlight(file="main.py", pattern=r"print\(i\)", note="the body"),
        Highlight(file="main.py", start=Position(line=2), note="the loop line"),
        Highlight(file="main.py", pattern=r"print\('done ✓'\)"),  # ends at the end of the file
        Highlight(file="missing.py", start=Position(line=1)),  # not in the room: skipped
    ]
    anchored = anchor_highlights(files, highlights)
    assert [a.file for a in anchored] == ["main.py"] * 3
    assert anchored[0].note == "the body"
    pairs = [(a.start, a.end) for a in anchored]
    expected = ["print(i)", "for i in range(3):", "print('done ✓')"]
    assert _resolve(doc, pairs) == expected

    # someone types above the highlights (with characters outside the BMP), inside the
    # first one, and at the end of the file: each highlight still covers its own code
    now = str(text)
    text.insert(0, "# ünïcode 😀 comment\n")
    now = str(text)
    inside = now.index("print(i)") + len("print(")
    text.insert(_utf8(now, inside), "i + ")
    now = str(text)
    text.insert(_utf8(now, len(now)), "\n# 👋 bye")
    assert _resolve(doc, pairs) == ["print(i + i)", "for i in range(3):", "print('done ✓')"]


def test_a_deleted_range_collapses_instead_of_moving_elsewhere(workspace):
    doc, text = workspace
    files = doc.get("files", type=Map)
    [anchor] = anchor_highlights(files, [Highlight(file="main.py", pattern=r"range\(3\)")])
    now = str(text)
    begin = now.index("range(3)")
    del text[_utf8(now, begin - 2) : _utf8(now, begin + len("range(3)") + 1)]
    assert _resolve(doc, [(anchor.start, anchor.end)]) == [""]
