"""The sans-I/O frame parser: exact bytes kept, bad frames refused whole."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text, create_sync_message, create_update_message

from crdt import (
    MessageKind,
    ProtocolError,
    awareness_message,
    parse_frame,
    permission_denied,
    room_message,
    step2_as_update,
    sync_step2,
    sync_update,
)


def an_update() -> bytes:
    doc = Doc()
    doc["t"] = Text("hello")
    return doc.get_update()


def test_messages_keep_their_exact_bytes():
    update = an_update()
    frame = sync_update(update) + awareness_message(b"\x00") + b"\x03"
    messages = parse_frame(frame)
    assert [m.kind for m in messages] == [
        MessageKind.SYNC_UPDATE,
        MessageKind.AWARENESS,
        MessageKind.QUERY_AWARENESS,
    ]
    assert messages[0].payload == update
    assert b"".join(m.raw for m in messages) == frame


def test_our_encoding_matches_pycrdt_helpers():
    doc = Doc()
    doc["t"] = Text("x")
    assert parse_frame(create_sync_message(doc))[0].kind is MessageKind.SYNC_STEP1
    u = an_update()
    assert sync_update(u) == create_update_message(u)


def test_step2_becomes_an_update_for_peers():
    update = an_update()
    message = parse_frame(sync_step2(update))[0]
    assert message.kind is MessageKind.SYNC_STEP2
    assert step2_as_update(message) == sync_update(update)


def test_permission_denied_is_the_auth_message_with_utf8_reason():
    frame = permission_denied("réservé")
    message = parse_frame(frame)[0]
    assert message.kind is MessageKind.AUTH
    assert message.payload.decode() == "réservé"
    assert frame[:2] == b"\x02\x00"


def test_room_message_round_trip():
    body = b"\x81\xa4type\xa4ping"
    message = parse_frame(room_message(body))[0]
    assert message.kind is MessageKind.ROOM and message.payload == body


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"", "empty frame"),
        (b"\x00\x02\xff\xff", "truncated varint"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint too long"),
        (b"\x00\x02\x10abc", "length prefix"),
        (b"\x09", "unknown message type 9"),
        (b"\x00\x07\x00", "unknown sync message type 7"),
        (b"\x02\x00\x02\xff\xfe", "not valid UTF-8"),
    ],
)
def test_bad_frames_raise_with_a_reason(frame, why):
    with pytest.raises(ProtocolError, match=why):
        parse_frame(frame)


def test_a_frame_bad_at_the_end_is_refused_whole():
    with pytest.raises(ProtocolError):
        parse_frame(sync_update(an_update()) + b"\x00\x02")
