"""The pairing accrual with a fake clock: only time together AND active counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from rooms import Person
from server.pairing import (
    LOCAL,
    Credit,
    NodeNews,
    PairAccrual,
    PairingService,
    comebacks,
    merge_presence,
)

A = uuid.UUID(int=1)
B = uuid.UUID(int=2)
C = uuid.UUID(int=3)
WALL = 1_700_000_000_000  # wall ms at clock 0


def accrual() -> PairAccrual:
    return PairAccrual(minute=60.0, window=300.0, flush_every=300.0)


def at(t: float) -> int:
    return WALL + round(t * 1000)


def test_two_active_people_accrue_whole_minutes_until_one_leaves() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    assert pairs.observe(0.0, at(0), [A, B], active) == []
    for t in range(10, 130, 10):  # both keep editing
        active[A] = active[B] = float(t)
        assert pairs.observe(float(t), at(t), [A, B], active) == []
    assert pairs.seconds(A, B) == 120.0
    # 30 s more, then B leaves: 2.5 minutes -> 2 whole ones, the rest dropped
    credits = pairs.observe(150.0, at(150), [A], active)
    assert credits == [Credit(A, B, 2, at(0), (A, B))]
    assert pairs.pairs == 0


def test_idling_together_is_not_pairing() -> None:
    pairs = accrual()
    pairs.observe(0.0, at(0), [A, B], {})
    assert pairs.observe(600.0, at(600), [A, B], {}) == []
    # only A works: still not a pair at work
    assert pairs.observe(900.0, at(900), [A, B], {A: 890.0}) == []
    assert pairs.seconds(A, B) == 0.0
    assert pairs.observe(1000.0, at(1000), [A], {A: 990.0}) == []


def test_activity_expires_after_the_window() -> None:
    pairs = accrual()
    pairs.observe(0.0, at(0), [A, B], {A: 0.0, B: 0.0})
    # nobody does anything for 20 minutes: only the first 5 (the window) count
    credits = pairs.observe(1200.0, at(1200), [A], {A: 0.0, B: 0.0})
    assert credits == [Credit(A, B, 5, at(0), (A, B))]


def test_a_pair_that_becomes_active_counts_from_the_later_activity() -> None:
    pairs = accrual()
    pairs.observe(0.0, at(0), [A, B], {})
    # A edited at 100, B at 200: together at work from 200 on, not before
    pairs.observe(260.0, at(260), [A, B], {A: 100.0, B: 200.0})
    assert pairs.seconds(A, B) == 60.0
    credits = pairs.observe(270.0, at(270), [A], {A: 100.0, B: 200.0})
    assert credits == [Credit(A, B, 1, at(200), (A, B))]


def test_long_sessions_are_credited_every_flush_and_keep_the_rest() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    pairs.observe(0.0, at(0), [A, B], active)
    credits = []
    for t in range(5, 665, 5):
        active[A] = active[B] = float(t)
        credits += pairs.observe(float(t), at(t), [A, B], active)
    # flushed at 300 s (5 min) and at 600 s; segment keys differ
    assert credits == [Credit(A, B, 5, at(0), (A, B)), Credit(A, B, 5, at(300), (A, B))]
    assert pairs.seconds(A, B) == 60.0
    credits = pairs.close(670.0, at(670), active)
    assert credits == [Credit(A, B, 1, at(600), (A, B))]


def test_three_people_make_three_pairs_and_a_newcomer_starts_from_now() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0, C: 0.0}
    pairs.observe(0.0, at(0), [A, B], active)
    pairs.observe(60.0, at(60), [A, B, C], {A: 60.0, B: 60.0, C: 60.0})
    active = {A: 120.0, B: 120.0, C: 120.0}
    pairs.observe(120.0, at(120), [A, B, C], active)
    assert pairs.seconds(A, B) == 120.0
    assert pairs.seconds(A, C) == 60.0 and pairs.seconds(B, C) == 60.0
    credits = pairs.observe(121.0, at(121), [A, B], active)
    assert sorted(credits, key=lambda c: (c.a, c.b)) == [
        Credit(A, C, 1, at(60), (A, C)),
        Credit(B, C, 1, at(60), (B, C)),
    ]
    assert pairs.close(130.0, at(130), active) == [Credit(A, B, 2, at(0), (A, B))]


def test_the_same_session_always_gives_the_same_credits() -> None:
    """What the keys are made of is a function of what was observed: a replay of the
    same observations gives the same segment starts."""

    def run() -> list[Credit]:
        pairs = accrual()
        active = {A: 0.0, B: 0.0}
        out = pairs.observe(0.0, at(0), [A, B], active)
        for t in range(30, 400, 30):
            active[A] = active[B] = float(t)
            out += pairs.observe(float(t), at(t), [A, B], active)
        return out + pairs.close(400.0, at(400), active)

    assert run() == run()
    assert [c.segment_start_ms for c in run()] == [at(0), at(300)]


# -- across nodes: who is credited where, and only for time known together -----------


def test_a_node_credits_only_its_own_people() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    pairs.observe(0.0, at(0), [A, B], active, mine={A})
    active = {A: 90.0, B: 90.0}
    credits = pairs.observe(90.0, at(90), [A], active, mine={A})
    assert credits == [Credit(A, B, 1, at(0), (A,))]
    # nobody of this node in a pair: not followed at all
    pairs.observe(100.0, at(100), [B, C], {B: 100.0, C: 100.0}, mine={A})
    assert pairs.pairs == 0


def test_a_remote_partner_counts_only_until_their_node_was_last_heard() -> None:
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    pairs.observe(0.0, at(0), [A, B], active, mine={A})
    # B's node last heard at 50: accrued to 50, not to 58
    active = {A: 58.0, B: 50.0}
    pairs.observe(58.0, at(58), [A, B], active, seen={B: 50.0}, mine={A})
    assert pairs.seconds(A, B) == 50.0
    # heard again at 100: from 50 on, nothing lost in between
    active = {A: 100.0, B: 100.0}
    pairs.observe(103.0, at(103), [A, B], active, seen={B: 100.0}, mine={A})
    assert pairs.seconds(A, B) == 100.0
    # B's node went silent (or B left it) at 130: the pair ends there, not at 170
    active = {A: 170.0, B: 130.0}
    credits = pairs.observe(170.0, at(170), [A], active, seen={B: 130.0}, mine={A})
    assert credits == [Credit(A, B, 2, at(0), (A,))]


def test_a_pair_whose_credited_side_changes_ends_and_starts_again_from_now() -> None:
    """B also connects to this node (its other node having a larger id): from then on
    this node credits both; what went before was credited to A alone."""
    pairs = accrual()
    active = {A: 0.0, B: 0.0}
    pairs.observe(0.0, at(0), [A, B], active, mine={A})
    active = {A: 70.0, B: 70.0}
    credits = pairs.observe(70.0, at(70), [A, B], active, mine={A, B})
    assert credits == [Credit(A, B, 1, at(0), (A,))]
    active = {A: 140.0, B: 140.0}
    assert pairs.close(140.0, at(140), active) == [Credit(A, B, 1, at(70), (A, B))]


NODE_1 = b"\x01" * 16
NODE_2 = b"\x02" * 16


def test_merge_presence_sees_everyone_and_credits_only_its_own() -> None:
    nodes = {
        NODE_2: NodeNews(heard=40.0, ttl=10.0, people={B: 35.0, C: None}),
    }
    seen = merge_presence(NODE_1, {A, C}, {A: 38.0, C: 30.0, B: 1.0}, nodes, {})
    assert seen.present == {A, B, C}
    # a remote-only person is known present until their node was heard; C is here too
    assert seen.seen == {B: 40.0}
    # activity: the local clock's, and the others' converted; the latest of both
    assert seen.last_active == {A: 38.0, B: 35.0, C: 30.0}
    # C is also on a node of a larger id: this node (the smallest) credits A and C
    assert seen.mine == {A, C}
    other = merge_presence(
        NODE_2, {B, C}, {}, {NODE_1: NodeNews(41.0, 10.0, {A: 38.0, C: 30.0})}, {}
    )
    assert other.mine == {B}
    # someone gone from another node is known present until then, unless present still
    gone = merge_presence(NODE_1, {A}, {}, {}, {B: 44.0, A: 12.0})
    assert gone.present == {A} and gone.seen == {B: 44.0}


# -- two nodes' services wired by a fake bus ----------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


class Feed:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def submit(self, event: Any, *, room_id: str | None = None) -> bool:
        self.events.append(event)
        return True


@dataclass(eq=False)
class Conn:
    person: Person


class FakeRoom:
    """What the pairing service reads of a room, on one node; ``send_service`` goes to
    the same room on the other nodes (unless the node is 'killed')."""

    def __init__(self, room_id: str) -> None:
        self.id = room_id
        self.connections: dict[Conn, None] = {}
        self.last_active: dict[uuid.UUID, float] = {}
        self.cluster: object = object()
        self.peers: list[tuple[PairingService, FakeRoom]] = []
        self.alive = True

    def send_service(self, tag: str, payload: bytes) -> bool:
        assert tag == "pairing"
        if self.alive:
            for service, room in self.peers:
                BUS.append((service, room, payload))
        return True


#: Messages on their way, delivered in order by ``deliver()`` (as the bus does, later).
BUS: list[tuple[PairingService, FakeRoom, bytes]] = []


def deliver() -> None:
    while BUS:
        service, room, payload = BUS.pop(0)
        if room.alive:
            service.remote(room, payload)  # type: ignore[arg-type]


def student(user: uuid.UUID) -> Conn:
    return Conn(Person(user_id=user, name=str(user.int), role="student"))


class TwoNodes:
    def __init__(self) -> None:
        BUS.clear()
        self.clock = Clock()
        self.feeds = [Feed(), Feed()]
        self.rooms = [FakeRoom("lab"), FakeRoom("lab")]
        self.services = [
            PairingService(
                f,  # type: ignore[arg-type]
                lambda r=r: [r],  # type: ignore[misc]
                minute=60.0,
                clock=self.clock,
                wall=self.clock.wall,
            )
            for f, r in zip(self.feeds, self.rooms, strict=True)
        ]
        self.services[0].node, self.services[1].node = NODE_1, NODE_2
        self.rooms[0].peers = [(self.services[1], self.rooms[1])]
        self.rooms[1].peers = [(self.services[0], self.rooms[0])]

    def join(self, node: int, conn: Conn) -> None:
        self.rooms[node].connections[conn] = None
        self.services[node].greet(self.rooms[node], conn)  # type: ignore[arg-type]
        deliver()

    def leave(self, node: int, conn: Conn) -> None:
        del self.rooms[node].connections[conn]
        self.services[node].left(self.rooms[node], conn)  # type: ignore[arg-type]
        deliver()

    def work(self, until: float, *who: tuple[int, uuid.UUID]) -> None:
        """Both nodes sweep every 10 s while ``who`` edit, until ``until``."""
        while self.clock.now < until:
            self.clock.now += 10.0
            for node, user in who:
                self.rooms[node].last_active[user] = self.clock.now
            for node in (0, 1):
                if self.rooms[node].alive:
                    self.services[node]._observe(self.rooms[node], renew=True)  # type: ignore[arg-type]
                deliver()

    def credited(self) -> list[tuple[int, uuid.UUID, uuid.UUID, int, str]]:
        return [
            (node, e.user_id, e.partner_id, e.minutes, e.key)
            for node, feed in enumerate(self.feeds)
            for e in feed.events
        ]


def test_students_on_two_nodes_are_each_credited_once_by_their_own_node() -> None:
    nodes = TwoNodes()
    a, b = student(A), student(B)
    nodes.join(0, a)
    nodes.join(1, b)
    nodes.work(1000.0 + 200.0, (0, A), (1, B))
    nodes.leave(1, b)
    credited = nodes.credited()
    assert [(n, u, p) for n, u, p, _, _ in credited] == [(0, A, B), (1, B, A)]
    for _, user, partner, minutes, key in credited:
        assert 3 <= minutes <= 4  # 200 s together, the rest of a minute dropped
        assert key.startswith(f"pair:lab:{user}:{partner}:")
    # nothing more from either: the pair ended on both
    nodes.work(1000.0 + 400.0, (0, A))
    assert len(nodes.credited()) == 2


def test_a_killed_node_s_student_counts_only_until_it_was_last_heard() -> None:
    nodes = TwoNodes()
    nodes.join(0, student(A))
    nodes.join(1, student(B))
    nodes.work(1000.0 + 170.0, (0, A), (1, B))
    nodes.rooms[1].alive = False  # kill -9: no leave, no more renewals
    nodes.work(1000.0 + 600.0, (0, A))
    # together and active from 1010 to 1170 (last heard): 2 minutes, not the 3 that
    # counting until the news expired (1210) would give
    credited = nodes.credited()
    assert [(n, u, p, m) for n, u, p, m, _ in credited] == [(0, A, B, 2)]


def test_a_student_on_both_nodes_is_credited_by_one_only() -> None:
    nodes = TwoNodes()
    nodes.join(0, student(A))
    nodes.join(1, student(A))  # a second tab, on the other node
    nodes.join(1, student(B))
    nodes.work(1000.0 + 130.0, (0, A), (1, A), (1, B))
    for node in (1, 0):
        for conn in list(nodes.rooms[node].connections):
            nodes.leave(node, conn)
    credited = sorted(nodes.credited())
    # A by node 1 (the smaller id), B by node 2: once each
    assert [(n, u, p) for n, u, p, _, _ in credited] == [(0, A, B), (1, B, A)]


def test_a_student_back_through_another_node_is_not_credited_for_the_gap() -> None:
    """A's node dies at 1170 (last heard); A reconnects through node 2 at 1195, before
    the dead node's news expires: the 25 s between are nobody's."""
    nodes = TwoNodes()
    nodes.join(0, student(A))
    nodes.join(1, student(B))
    nodes.work(1000.0 + 170.0, (0, A), (1, B))
    nodes.rooms[0].alive = False
    nodes.clock.now += 25.0
    nodes.join(1, student(A))
    nodes.work(1000.0 + 400.0, (1, A), (1, B))
    for conn in list(nodes.rooms[1].connections):
        nodes.leave(1, conn)
    credited = [(n, u, p, m) for n, u, p, m, _ in nodes.credited()]
    # B: 1010 to 1170 (2 minutes, not the 3 that counting the gap to 1210 gives);
    # then A and B together on node 2 again from 1210 (when the dead node's news
    # expired and node 2 credits A as well) to 1400: 3 minutes each
    assert sorted(credited) == [(1, A, B, 3), (1, B, A, 2), (1, B, A, 3)]


def test_comebacks_are_people_known_only_elsewhere_now_somewhere_new() -> None:
    n1, n2 = frozenset({NODE_1}), frozenset({NODE_2})
    before = {A: n1, B: LOCAL, C: n1}
    seen_before = {A: 40.0, C: 41.0}
    now = {A: n1 | LOCAL, B: LOCAL | n2, C: n1}
    # A is here now too: back from 40; B was here all along; C is where C was
    assert comebacks(before, seen_before, now) == {A: 40.0}
    assert comebacks(before, seen_before, {A: n2}) == {A: 40.0}
    assert comebacks({}, {}, now) == {}
