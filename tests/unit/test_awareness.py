"""The room's awareness table: y-protocols' clock rules and lib0's UTF-8 lengths."""

from __future__ import annotations

import pytest
from pycrdt import Encoder

from crdt import AwarenessTable, ProtocolError, decode_awareness_update, encode_awareness_update


def test_pycrdt_encoder_writes_char_count_which_is_why_we_encode_ourselves():
    # pycrdt's Encoder.write_var_string puts len(str) where lib0 expects UTF-8 bytes.
    enc = Encoder()
    enc.write_var_string("José")
    assert enc.to_bytes()[0] == 4  # 4 characters, but "José" is 5 bytes in UTF-8
    ours = encode_awareness_update([(1, 1, '{"name":"José"}')])
    assert decode_awareness_update(ours) == [(1, 1, '{"name":"José"}')]
    assert ours[3] == len('{"name":"José"}'.encode())


@pytest.mark.parametrize("name", ["José", "李雷", "Zoë 👩‍💻", "plain"])
def test_round_trip_non_ascii(name):
    state = '{"user":{"name":"' + name + '"}}'
    assert decode_awareness_update(encode_awareness_update([(7, 3, state)])) == [(7, 3, state)]


def test_clock_rules_add_update_ignore_stale_remove():
    table = AwarenessTable()
    change = table.apply([(1, 1, '{"a":1}')])
    assert change.added == [1]
    assert not table.apply([(1, 1, '{"a":2}')])  # same clock, not null: stale
    assert table.apply([(1, 2, '{"a":2}')]).updated == [1]
    assert not table.apply([(1, 1, '{"a":3}')])  # older clock
    assert table.apply([(1, 2, "null")]).removed == [1]  # same clock + null removes
    assert table.states() == {}
    assert table.apply([(1, 3, '{"a":4}')]).updated == [1]  # comes back


def test_remove_announces_null_with_same_clock():
    table = AwarenessTable()
    table.apply([(5, 9, '{"x":1}'), (6, 1, '{"y":2}')])
    removal = table.remove({5})
    assert removal is not None
    assert decode_awareness_update(removal) == [(5, 9, "null")]
    assert set(table.states()) == {6}
    assert table.remove({5}) is None  # already gone: nothing to announce


def test_encode_all_keeps_states_byte_exact():
    table = AwarenessTable()
    raw = '{"user": {"name": "李雷"},  "cursor":null}'
    table.apply([(2, 1, raw)])
    assert decode_awareness_update(table.encode_all() or b"") == [(2, 1, raw)]


def test_outdated_uses_the_clock():
    now = [100.0]
    table = AwarenessTable(clock=lambda: now[0])
    table.apply([(1, 1, "{}")])
    now[0] = 120.0
    table.apply([(2, 1, "{}")])
    now[0] = 131.0
    assert table.outdated(30) == [1]


@pytest.mark.parametrize(
    "update",
    [
        b"\x01\x01\x01\x05{bad:",  # not JSON
        b"\x02\x01\x01\x02{}",  # says two entries, has one
        b"\x01\x01\x01\x02{}\x00",  # trailing bytes
        b"\x01\x01\x01\x02\xff\xfe",  # not UTF-8
    ],
)
def test_bad_awareness_updates_raise(update):
    with pytest.raises(ProtocolError):
        decode_awareness_update(update)


def test_tombstones_block_stale_messages_then_are_forgotten():
    now = [0.0]
    table = AwarenessTable(clock=lambda: now[0])
    table.apply([(1, 5, '{"a":1}')])
    table.remove({1})
    now[0] = 10.0
    table.forget_removed(older_than=60)
    assert not table.apply([(1, 4, '{"a":0}')])  # older clock of a departed client: ignored
    now[0] = 100.0
    table.forget_removed(older_than=60)
    assert table.apply([(1, 1, '{"a":2}')]).added == [1]  # forgotten: a new session may start over
