"""The room document: files API edits, validation and the shared sync answer."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map

from crdt import MessageKind, ProtocolError, RoomDocument, parse_frame


def client_with(room: RoomDocument) -> Doc:
    doc = Doc()
    doc.apply_update(room.doc.get_update())
    return doc


def test_put_file_creates_then_edits_only_the_changed_middle():
    room = RoomDocument()
    assert room.put_file("a.py", "def f():\n    return 1\n") is not None
    peer = client_with(room)
    # the peer types at the end while the server rewrites the middle
    peer_text = peer.get("files", type=Map)["a.py"]
    sv = peer.get_state()
    peer_text += "# peer\n"
    peer_update = peer.get_update(sv)
    update = room.put_file("a.py", "def f():\n    return 2\n")
    assert update is not None
    room.apply_update(peer_update)
    peer.apply_update(update)
    assert room.read_file("a.py") == "def f():\n    return 2\n# peer\n"
    assert str(peer_text) == room.read_file("a.py")


def test_put_same_content_is_no_change():
    room = RoomDocument()
    room.put_file("a.py", "x")
    version = room.version
    assert room.put_file("a.py", "x") is None
    assert room.version == version


def test_put_non_ascii_edits_by_utf8_offsets():
    room = RoomDocument()
    room.put_file("é.py", "naïve 😀 café")
    room.put_file("é.py", "naïve 😀 thé café")
    assert room.read_file("é.py") == "naïve 😀 thé café"


def test_delete_file():
    room = RoomDocument()
    assert room.delete_file("nope") is None
    room.put_file("a.py", "x")
    update = room.delete_file("a.py")
    assert update is not None and room.read_files() == {}
    peer = Doc()
    peer.apply_update(room.doc.get_update())
    assert dict(peer.get("files", type=Map).items()) == {}


def test_invalid_update_raises_and_changes_nothing():
    room = RoomDocument()
    room.put_file("a.py", "x")
    state = room.doc.get_state()
    with pytest.raises(ProtocolError):
        room.apply_update(b"\x05\x01\x02\x03\x04\x05")
    assert room.doc.get_state() == state and room.read_files() == {"a.py": "x"}


def test_full_sync_answer_is_shared_per_version():
    room = RoomDocument()
    room.put_file("a.py", "x")
    first = room.sync_answer(b"\x00", 1 << 20)
    assert room.sync_answer(b"\x00", 1 << 20) is first
    room.put_file("a.py", "y")
    assert room.sync_answer(b"\x00", 1 << 20) is not first


def test_big_document_answer_is_cut_into_pieces_under_the_limit():
    room = RoomDocument()
    for i in range(30):
        room.put_file(f"f{i}.txt", "z" * 10_000)
    answer = room.sync_answer(b"\x00", 32_000)
    assert len(answer) > 5
    assert all(len(m) <= 32_000 for m in answer)
    kinds = [parse_frame(m)[0].kind for m in answer]
    assert kinds[-1] is MessageKind.SYNC_STEP2 and set(kinds[:-1]) == {MessageKind.SYNC_UPDATE}
    peer = Doc()
    for m in answer:
        peer.apply_update(parse_frame(m)[0].payload)
    assert {k: str(v) for k, v in peer.get("files", type=Map).items()} == room.read_files()


def test_answer_to_a_known_state_vector_is_the_difference():
    room = RoomDocument()
    room.put_file("a.py", "x")
    peer = client_with(room)
    room.put_file("b.py", "y")
    answer = room.sync_answer(peer.get_state(), 1 << 20)
    peer.apply_update(parse_frame(answer[-1])[0].payload)
    assert str(peer.get("files", type=Map)["b.py"]) == "y"
    with pytest.raises(ProtocolError):
        room.sync_answer(b"\xff\xff", 1 << 20)
