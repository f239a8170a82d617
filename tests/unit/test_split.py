"""Tests for crdt.split.split_update: cutting one Yjs v1 update into smaller ones.

The ground truth is always a real CRDT implementation: pieces are applied to
a fresh pycrdt document (the server's engine) and, where Node.js and the npm
packages of tests/node are installed, to a real Yjs document (the clients'
engine), and the result is compared with applying the original update.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pycrdt
import pytest
from pycrdt import Array, Decoder, Doc, Map, Text, XmlFragment

from crdt.split import split_update
from tests.conftest import need

FIXTURES = Path(__file__).parent / "fixtures"
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture
def node_ready() -> None:
    """Real Yjs through Node: skipped outside CI when missing, a failure in CI."""
    need(
        shutil.which("node") is not None and (NODE_DIR / "node_modules" / "yjs").is_dir(),
        "needs Node.js and the npm packages of tests/node (npm ci there)",
    )


requires_node = pytest.mark.usefixtures("node_ready")


# --- helpers -----------------------------------------------------------------


def state_vector(state: bytes) -> dict[int, int]:
    """Decode an encoded state vector; byte order varies with hash map order."""
    decoder = Decoder(state)
    return {
        decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())
    }


def apply_all(pieces: list[bytes]) -> Doc:
    doc: Doc = Doc()
    for piece in pieces:
        doc.apply_update(piece)
    return doc


def files_of(doc: Doc) -> dict[str, object]:
    return doc.get("files", type=Map).to_py()


def struct_count(piece: bytes) -> int:
    """Structs in a v1 update holding a single client block (else -1)."""
    decoder = Decoder(piece)
    return decoder.read_var_uint() if decoder.read_var_uint() == 1 else -1


def assert_no_pending_in_order(pieces: list[bytes]) -> None:
    """Applied in order, every piece integrates completely (nothing pending)."""
    doc: Doc = Doc()
    for i, piece in enumerate(pieces):
        doc.apply_update(piece)
        covered = pycrdt.get_state(pycrdt.merge_updates(*pieces[: i + 1]))
        assert state_vector(doc.get_state()) == state_vector(covered), f"piece {i} left pending"


def byte_offset(text: str, index: int) -> int:
    # pycrdt 0.14 addresses Text by UTF-8 byte offsets.
    return len(text[:index].encode())


def collaborative_doc(seed: int, clients: int = 3, steps: int = 1500) -> Doc:
    """Several peers editing a ``files`` map of ``Text`` concurrently.

    Deterministic (fixed client ids, seeded choices). Covers inserts and
    deletes of non-ASCII text with emoji (surrogate pairs), map keys
    overwritten, nested maps and arrays, large (multi-byte varint) client ids.
    """
    rnd = random.Random(seed)
    docs = [Doc(client_id=(2**45 + 7919 * i) if i % 2 else 100 + i) for i in range(clients)]
    snippets = ["a", "bc", "😀x", "José ", "李雷 ", "\n", "🎉🎉", "def f():\n    pass\n"]
    for step in range(steps):
        doc = rnd.choice(docs)
        files = doc.get("files", type=Map)
        name = f"f{rnd.randrange(6)}.py"
        roll = rnd.random()
        if name not in files or roll < 0.02:
            files[name] = Text("init 😀 José 李雷\n")  # overwrites an existing key
        elif roll < 0.05:
            files["meta"] = Map({"step": step, "tags": ["x", "é"], "ok": True})
        elif roll < 0.07:
            files["list"] = Array([1, "two", {"three": 3.5}])
        else:
            text = files[name]
            if not isinstance(text, Text):
                continue
            current = str(text)
            if roll < 0.35 and len(current) > 4:
                i = rnd.randrange(len(current) - 3)
                del text[byte_offset(current, i) : byte_offset(current, i + rnd.randint(1, 3))]
            else:
                at = byte_offset(current, rnd.randrange(len(current) + 1))
                text.insert(at, rnd.choice(snippets))
        if rnd.random() < 0.3:
            src, dst = rnd.sample(docs, 2)
            dst.apply_update(src.get_update(dst.get_state()))
    for src in docs:
        for dst in docs:
            if src is not dst:
                dst.apply_update(src.get_update(dst.get_state()))
    return docs[0]


def run_yjs(original: bytes, orders: dict[str, list[bytes]]) -> dict[str, dict[str, object]]:
    """Apply ``original`` and each list of pieces to real Yjs docs (Node.js)."""
    script = r"""
import * as Y from 'yjs'
import { readFileSync } from 'node:fs'
const input = JSON.parse(readFileSync(0, 'utf8'))
const bin = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'))
const hex = (u8) => Buffer.from(u8).toString('hex')
const ref = new Y.Doc()
Y.applyUpdate(ref, bin(input.original))
const expected = hex(Y.encodeStateAsUpdate(ref))
const result = {}
for (const [name, pieces] of Object.entries(input.orders)) {
  const doc = new Y.Doc()
  const pendingAfter = []
  pieces.forEach((piece, i) => {
    Y.applyUpdate(doc, bin(piece))
    if (doc.store.pendingStructs || doc.store.pendingDs) pendingAfter.push(i)
  })
  result[name] = {
    equal: hex(Y.encodeStateAsUpdate(doc)) === expected,
    pendingAfter,
    pendingAtEnd: Boolean(doc.store.pendingStructs || doc.store.pendingDs),
  }
}
process.stdout.write(JSON.stringify(result))
"""
    payload = json.dumps(
        {
            "original": original.hex(),
            "orders": {name: [p.hex() for p in pieces] for name, pieces in orders.items()},
        }
    )
    completed = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=payload,
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


# --- fast path ---------------------------------------------------------------------


def test_small_update_is_returned_unchanged() -> None:
    update = collaborative_doc(1, steps=50).get_update()
    assert split_update(update, len(update)) == [update]
    assert split_update(update, len(update))[0] is update
    assert split_update(update, 10 * len(update))[0] is update


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        split_update(b"\x00\x00", 0)


# --- round trips through pycrdt ----------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("max_bytes", [64, 200, 1000, 4000])
def test_collaborative_doc_round_trip(seed: int, max_bytes: int) -> None:
    original = collaborative_doc(seed, clients=2 + seed)
    update = original.get_update()
    assert len(update) > 2 * max_bytes
    pieces = split_update(update, max_bytes)
    assert len(pieces) > 1
    # Every struct of these documents is far below 64 bytes, or is cuttable text.
    assert all(len(piece) <= max_bytes for piece in pieces)
    assert all(isinstance(piece, bytes) for piece in pieces)
    doc = apply_all(pieces)
    assert state_vector(doc.get_state()) == state_vector(original.get_state())
    assert files_of(doc) == files_of(original)
    assert_no_pending_in_order(pieces)


def test_tiny_max_bytes_emits_oversized_structs_alone() -> None:
    original = collaborative_doc(4)
    update = original.get_update()
    pieces = split_update(update, 16)
    oversized = [piece for piece in pieces if len(piece) > 16]
    assert oversized, "a 16-byte limit is below most item headers"
    assert all(struct_count(piece) == 1 for piece in oversized)
    doc = apply_all(pieces)
    assert state_vector(doc.get_state()) == state_vector(original.get_state())
    assert files_of(doc) == files_of(original)


def test_every_piece_is_a_valid_update_on_its_own() -> None:
    update = collaborative_doc(5).get_update()
    for piece in split_update(update, 300):
        Doc().apply_update(piece)  # raises on a malformed update


def test_large_delete_set_is_cut_into_pieces() -> None:
    original: Doc = Doc(client_id=77)
    text = original.get("files", type=Map)
    text["big.py"] = Text("".join(f"{i % 10}é" for i in range(4000)))
    body = text["big.py"]
    with original.transaction():
        for i in reversed(range(4000)):  # every digit: 4000 delete ranges
            del body[3 * i : 3 * i + 1]  # byte offsets; "dé" is 3 bytes
    update = original.get_update()
    pieces = split_update(update, 256)
    assert all(len(piece) <= 256 for piece in pieces)
    doc = apply_all(pieces)
    assert state_vector(doc.get_state()) == state_vector(original.get_state())
    assert files_of(doc) == files_of(original)


# --- cutting a single huge struct ------------------------------------------------------


def test_huge_single_insert_is_cut_below_the_limit() -> None:
    unit = "abcdefghij" * 5 + "😀é李雷\n"  # emoji and multi-byte characters everywhere
    content = unit * (5_000_000 // len(unit.encode()) + 1)
    original: Doc = Doc(client_id=4242)
    original.get("files", type=Map)["huge.txt"] = Text(content)
    update = original.get_update()
    assert len(update) > 5_000_000
    limit = 1_000_000
    pieces = split_update(update, limit)
    assert all(len(piece) <= limit for piece in pieces)
    assert 5 <= len(pieces) <= 7
    doc = apply_all(pieces)
    assert str(doc.get("files", type=Map)["huge.txt"]) == content
    assert state_vector(doc.get_state()) == state_vector(original.get_state())


@pytest.mark.parametrize("max_bytes", [40, 41, 42, 43, 97])
def test_cuts_never_split_a_surrogate_pair(max_bytes: int) -> None:
    content = "😀" * 50 + "x" + "🎉a" * 30 + "é" * 20
    original: Doc = Doc(client_id=9)
    original.get("t", type=Text).insert(0, content)
    update = original.get_update()
    pieces = split_update(update, max_bytes)
    assert len(pieces) > 3
    assert all(len(piece) <= max_bytes for piece in pieces)
    doc = apply_all(pieces)
    assert str(doc.get("t", type=Text)) == content
    assert state_vector(doc.get_state()) == state_vector(original.get_state())
    # Each piece on its own decodes as a valid update (no broken UTF-8).
    for piece in pieces:
        Doc().apply_update(piece)


def test_huge_string_item_with_right_origin() -> None:
    # Text inserted in front of existing text: the big item has a rightOrigin.
    original: Doc = Doc(client_id=31)
    text = original.get("files", type=Map)
    text["a"] = Text("tail")
    text["a"].insert(0, "José 😀 " * 2000)
    update = original.get_update()
    pieces = split_update(update, 700)
    assert all(len(piece) <= 700 for piece in pieces)
    doc = apply_all(pieces)
    assert files_of(doc) == files_of(original)
    assert_no_pending_in_order(pieces)


def test_huge_any_array_item_is_cut_between_elements() -> None:
    original: Doc = Doc(client_id=5)
    values = [i * 1000 if i % 3 else f"s{i}é" for i in range(3000)]  # pycrdt is slow beyond
    original.get("arr", type=Array).extend(values)
    update = original.get_update()
    pieces = split_update(update, 300)
    assert len(pieces) > 20
    assert all(len(piece) <= 300 for piece in pieces)
    doc = apply_all(pieces)
    assert doc.get("arr", type=Array).to_py() == original.get("arr", type=Array).to_py()
    assert state_vector(doc.get_state()) == state_vector(original.get_state())


def test_indivisible_struct_is_emitted_alone() -> None:
    original: Doc = Doc(client_id=3)
    settings = original.get("settings", type=Map)
    for i in range(50):
        settings[f"k{i}"] = i
    settings["blob"] = "x" * 10_000  # one Any value: cannot be cut
    settings["bin"] = b"\x00" * 5000  # Binary content: cannot be cut
    update = original.get_update()
    pieces = split_update(update, 1000)
    oversized = [piece for piece in pieces if len(piece) > 1000]
    assert len(oversized) == 2
    assert all(struct_count(piece) == 1 for piece in oversized)
    doc = apply_all(pieces)
    assert doc.get("settings", type=Map).to_py() == settings.to_py()


def test_reversed_pieces_of_a_cut_item_converge_in_pycrdt() -> None:
    # Each continuation item waits for the previous one (its origin). yrs'
    # pending store resolves such a chain; with several clients it can lose
    # structs out of order (a yrs 0.x limitation, see split_update), which is
    # why arbitrary orders are checked against Yjs below.
    content = "😀" * 50 + "x" + "🎉a" * 30 + "é" * 20
    original: Doc = Doc(client_id=9)
    original.get("t", type=Text).insert(0, content)
    pieces = split_update(original.get_update(), 40)
    doc = apply_all(pieces[::-1])
    assert str(doc.get("t", type=Text)) == content
    assert state_vector(doc.get_state()) == state_vector(original.get_state())


def test_xml_hook_is_parsed_as_yrs_writes_it() -> None:
    # Type ref 5 (XmlHook) without the hook name Yjs would write: pycrdt reads
    # it so, and cannot read the Yjs form at all.
    hook = b"\x27\x01\x01m\x01h\x05"  # Type item, root "m", key "h", XmlHook
    text = b"\x04\x01\x01t\x03abc"  # String item in root "t"
    update = b"\x01\x02\x05\x00" + hook + text + b"\x00"
    pieces = split_update(update, 12)
    assert len(pieces) == 2
    reference: Doc = Doc()
    reference.apply_update(update)
    doc = apply_all(pieces)
    assert str(doc.get("t", type=Text)) == "abc"
    assert state_vector(doc.get_state()) == state_vector(reference.get_state())


# --- fixtures written by real Yjs ------------------------------------------------------


def snapshot(doc: Doc) -> dict[str, object]:
    """Everything the Yjs fixture holds, as plain Python."""
    array = doc.get("a", type=Array)
    return {
        "m": doc.get("m", type=Map).to_py(),
        "a": [item for item in array.to_py() if not isinstance(item, Doc)],
        "subdocs": [item.guid for item in array if isinstance(item, Doc)],
        "t": doc.get("t", type=Text).diff(),
        "x": str(doc.get("x", type=XmlFragment)),
        "state": state_vector(doc.get_state()),
    }


@pytest.mark.parametrize("max_bytes", [12, 24, 48, 100, 300])
def test_yjs_fixture_all_content_types(max_bytes: int) -> None:
    update = fixture("yjs_all_content")
    pieces = split_update(update, max_bytes)
    assert len(pieces) > 1
    reference: Doc = Doc()
    reference.apply_update(update)
    doc = apply_all(pieces)
    assert snapshot(doc) == snapshot(reference)
    assert "subdoc-guid-1" in snapshot(doc)["subdocs"]


def test_yjs_fixture_skip_structs() -> None:
    # A merged update with a clock gap, bridged by a Skip struct.
    gap, missing, full = (fixture(n) for n in ("yjs_skip_gap", "yjs_skip_missing", "yjs_skip_full"))
    pieces = split_update(gap, 12)
    assert len(pieces) > 1
    # The gap is filled first: yrs (pycrdt 0.14) can lose structs when several
    # updates wait in its pending store (see test_yjs_fills_a_gap_after_pieces
    # for the other order, with Yjs).
    doc = apply_all([missing, *pieces])
    reference: Doc = Doc()
    reference.apply_update(full)
    assert str(doc.get("t", type=Text)) == str(reference.get("t", type=Text))
    assert state_vector(doc.get_state()) == state_vector(reference.get_state())


# --- real Yjs as the receiver ------------------------------------------------------------


@pytest.mark.node
@requires_node
@pytest.mark.parametrize(
    ("name", "max_bytes"),
    [("yjs_all_content", 12), ("yjs_all_content", 64), ("yjs_json_content", 20)],
)
def test_yjs_applies_pieces_of_yjs_fixtures(name: str, max_bytes: int) -> None:
    update = fixture(name)
    pieces = split_update(update, max_bytes)
    assert len(pieces) > 1
    result = run_yjs(update, {"in_order": pieces, "reversed": pieces[::-1]})
    assert result["in_order"] == {"equal": True, "pendingAfter": [], "pendingAtEnd": False}
    assert result["reversed"]["equal"] is True
    assert result["reversed"]["pendingAtEnd"] is False


@pytest.mark.node
@requires_node
def test_yjs_fills_a_gap_after_pieces() -> None:
    gap, missing, full = (fixture(n) for n in ("yjs_skip_gap", "yjs_skip_missing", "yjs_skip_full"))
    pieces = split_update(gap, 12)
    result = run_yjs(full, {"gap_last": [*pieces, missing], "gap_first": [missing, *pieces]})
    for name in ("gap_last", "gap_first"):
        assert result[name]["equal"] is True, name
        assert result[name]["pendingAtEnd"] is False, name


@pytest.mark.node
@requires_node
def test_yjs_applies_pieces_in_any_order() -> None:
    update = collaborative_doc(7, clients=4, steps=600).get_update()
    pieces = split_update(update, 500)
    shuffled = pieces[:]
    random.Random(7).shuffle(shuffled)
    result = run_yjs(update, {"in_order": pieces, "reversed": pieces[::-1], "shuffled": shuffled})
    # In order, no piece ever waits for a later one (causal order): the receiver
    # never has to re-merge a pending update, so applying stays linear.
    assert result["in_order"] == {"equal": True, "pendingAfter": [], "pendingAtEnd": False}
    for name in ("reversed", "shuffled"):
        assert result[name]["equal"] is True, name
        assert result[name]["pendingAtEnd"] is False, name


@pytest.mark.node
@requires_node
def test_yjs_applies_cut_string_and_any_items() -> None:
    original: Doc = Doc(client_id=11)
    original.get("t", type=Text).insert(0, ("😀 José 李雷 " * 500))
    original.get("arr", type=Array).extend(list(range(3000)))
    update = original.get_update()
    pieces = split_update(update, 333)
    assert all(len(piece) <= 333 for piece in pieces)
    result = run_yjs(update, {"in_order": pieces, "reversed": pieces[::-1]})
    assert result["in_order"] == {"equal": True, "pendingAfter": [], "pendingAtEnd": False}
    assert result["reversed"]["equal"] is True


# --- malformed input --------------------------------------------------------------------


def test_truncated_updates_raise_value_error() -> None:
    update = collaborative_doc(8, steps=60).get_update()
    for end in range(9, len(update)):  # up to 8 bytes is the unchecked fast path
        with pytest.raises(ValueError):
            split_update(update[:end], 8)


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_raise_value_error(seed: int) -> None:
    garbage = random.Random(seed).randbytes(300)
    with pytest.raises(ValueError):
        split_update(garbage, 16)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (b"\x01\x01\x05\x00\x0c" + b"\x00" * 20, "unknown content type 12"),
        (b"\x01\x01\x05\x00\x08\x01\x01\x05\x01\x6f" + b"\x00" * 20, "unknown lib0 Any tag"),
        (b"\x01\x01\x05\x00\x04\x01\x01\x05\x02\xff\xfe" + b"\x00" * 20, "UTF-8"),
        (b"\x01\x01\x05\x00\x00\x03\x00" + b"\x07" * 20, "trailing bytes"),
        (b"\x01\x01" + b"\xff" * 12 + b"\x01" + b"\x00" * 20, "varint too long"),
        (b"\x02\x01\x05\x00\x00\x01\x01\x05\x00\x00\x01\x00" + b"\x00" * 20, "listed twice"),
    ],
)
def test_specific_malformations_are_named(update: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_update(update, 8)
