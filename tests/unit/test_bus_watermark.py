"""The gap-free watermark: which of a room's seqs a node holds, what it holds back."""

from __future__ import annotations

import random

from rooms.bus import Kind, decode, encode
from rooms.watermark import Watermark


def test_in_order_messages_are_delivered_at_once():
    mark: Watermark[str] = Watermark(3)
    assert mark.offer(4, "d") == [(4, "d")]
    assert mark.offer(5, "e") == [(5, "e")]
    assert mark.contiguous == 5 and not mark.gap


def test_a_message_past_a_gap_is_held_until_the_gap_fills():
    mark: Watermark[str] = Watermark(0)
    assert mark.offer(2, "b") == []
    assert mark.offer(3, "c") == []
    assert mark.gap and mark.held == 2 and mark.contiguous == 0
    assert mark.offer(1, "a") == [(1, "a"), (2, "b"), (3, "c")]
    assert mark.contiguous == 3 and not mark.gap and mark.held == 0


def test_duplicates_are_not_delivered_twice():
    mark: Watermark[str] = Watermark(0)
    mark.offer(1, "a")
    assert mark.offer(1, "a") == []
    mark.offer(3, "c")
    assert mark.offer(3, "c") == []  # held already
    assert mark.offer(2, "b") == [(2, "b"), (3, "c")]
    assert mark.offer(3, "c") == []


def test_own_commits_go_past_a_gap_and_are_skipped_when_it_fills():
    mark: Watermark[str] = Watermark(5)
    assert mark.committed(7) == []  # ours, forwarded at once; 6 is someone else's
    assert mark.contiguous == 5 and mark.gap and mark.has(7)
    assert mark.offer(8, "h") == []  # held: 6 is still missing
    # 6 arrives: 7 is skipped (ours), 8 released.
    assert mark.offer(6, "f") == [(6, "f"), (8, "h")]
    assert mark.contiguous == 8 and not mark.gap
    assert mark.offer(7, "g") == []  # our own update coming back from a catch-up


def test_an_own_commit_can_fill_the_gap_of_held_messages():
    mark: Watermark[str] = Watermark(1)
    assert mark.offer(3, "c") == []
    assert mark.committed(2) == [(3, "c")]
    assert mark.contiguous == 3


def test_an_own_commit_replaces_a_held_copy_of_itself():
    mark: Watermark[str] = Watermark(1)
    mark.offer(3, "c")  # cannot happen with real nodes, but must not deliver twice
    mark.committed(3)
    assert mark.offer(2, "b") == [(2, "b")]
    assert mark.contiguous == 3


def test_a_head_notice_opens_a_gap_that_only_a_catch_up_closes():
    mark: Watermark[str] = Watermark(4)
    mark.expect(4)
    assert not mark.gap
    mark.expect(9)
    assert mark.gap and mark.known == 9
    for seq in range(5, 10):  # the catch-up offers the log's rows
        mark.offer(seq, str(seq))
    assert not mark.gap and mark.contiguous == 9


def test_a_snapshot_jump_drops_what_it_covers_and_releases_what_follows():
    mark: Watermark[str] = Watermark(2)
    mark.committed(5)
    mark.offer(4, "d")
    mark.offer(7, "g")
    mark.offer(9, "i")
    # compaction folded 3..6: the catch-up applies the snapshot up to 6.
    assert mark.jump(6) == [(7, "g")]
    assert mark.contiguous == 7 and mark.gap  # 8 is still missing before 9
    assert mark.offer(8, "h") == [(8, "h"), (9, "i")]
    assert mark.jump(5) == []  # an older snapshot changes nothing


def test_any_arrival_order_delivers_each_remote_seq_exactly_once_in_order():
    rng = random.Random(7)
    for _ in range(200):
        count = rng.randint(1, 40)
        own = {seq for seq in range(1, count + 1) if rng.random() < 0.3}
        events = [("own", seq) for seq in own] + [
            ("bus", seq) for seq in range(1, count + 1) if seq not in own
        ]
        others = [seq for seq in range(1, count + 1) if seq not in own]
        events += [("bus", rng.choice(others)) for _ in range(5) if others]  # duplicates
        rng.shuffle(events)
        # own commits of one node come in their own order
        own_order = iter(sorted(own))
        events = [(kind, next(own_order) if kind == "own" else seq) for kind, seq in events]
        mark: Watermark[int] = Watermark(0)
        delivered: list[int] = []
        for kind, seq in events:
            released = mark.committed(seq) if kind == "own" else mark.offer(seq, seq)
            delivered += [item for _, item in released]
        assert sorted(delivered) == sorted(set(range(1, count + 1)) - own)
        assert delivered == sorted(delivered)
        assert mark.contiguous == count and not mark.gap and mark.held == 0


def test_envelopes_round_trip():
    node = b"n" * 16
    data = encode(node, Kind.UPDATE, 42, b"\x01\x02")
    envelope = decode(data)
    assert (envelope.node, envelope.kind, envelope.seq, envelope.body) == (
        node,
        Kind.UPDATE,
        42,
        b"\x01\x02",
    )
    assert envelope.sent > 0
