"""Questions and quizzes in rooms: viewers ask and upvote, staff see live quiz tallies.

The room hands its question messages here (a ``rooms.RoomService``). What can be
checked without the database (a demo is loaded, the text's length, the
sender's role) is checked at once; the rest is a job on the room's lane. Why
one lane per room, run in order: a vote sent after a question, or a changed
quiz answer sent after the first, must be applied in the order the room got
them, and a joiner's list must not be overtaken by the changes that follow it.
Each job is one store call that commits as a whole, so a database outage tells
the sender (``unavailable``) and leaves nothing half done.

Quiz answers are checked against the loaded demo's own document (from the
``DemoLibrary``): the step must have a question, a choice must be one of its
choices, and whether the answer is right is decided here, not by the client.

Answers to questions (``question.answer``): anyone in the room may answer
someone else's question; its asker, or staff who can present, accepts one
answer (``question.accept``), once. The ledger hears of both through the
``ProgressFeed``: ``QuestionAsked`` for the asker when a question is stored,
``QuestionAnswered`` for the author of the accepted answer (once per question,
never for one's own question).

Joiners share one list: the questions of a (room, demo) with their answers
and voters are read in one query and kept until something in them changes, so
a burst of joiners costs one query, not one each; joiners waiting on the lane
at the same time are answered by one job.

With several server nodes (a shared bus), the same room lives on each node
that has people in it, each with its own cached lists, while Postgres is the
record. So a node that changes a (room, demo)'s questions tells the room's
other nodes (``Room.send_service`` with ``remote_tag`` "questions") *before*
it broadcasts the change: the bus keeps one node's messages to a room in
order, so by the time a node hands the changed item to its people it has
dropped its cached list, and the next joiner there reads Postgres. A list read
that a notice overtook is read again (its generation moved), so a joiner is
never sent a list older than an item it was already sent. Whatever the bus
loses (a Redis restart) is bounded by ``SHARED_LISTING_SECONDS``: a shared
room's cached list is not used longer than that. Quiz tallies are sent to the
staff of every node: a quiz answer stored on one node makes the others read
the step's counts again (on their lane, after what they did before) and send
them to their staff.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from prometheus_client import Counter

from demos.format import Demo
from demos.format import Question as DemoQuestion
from demos.timeline import Timeline
from progress import QuestionAnswered as AnswerAccepted
from progress import QuestionAsked
from rooms import Connection, Room, can_control_demo
from rooms.extension import (
    AnswerItem,
    QuestionAccept,
    QuestionAnswer,
    QuestionAnswered,
    QuestionAsk,
    QuestionItem,
    QuestionList,
    QuestionMessage,
    QuestionVote,
    QuizAnswer,
    QuizResult,
    QuizTally,
    server_time_ms,
)
from store import Store, StoreUnavailable
from store.records import Question, QuizCount

from . import answers
from .answers import QuestionView
from .demolibrary import DemoLibrary
from .progressfeed import ProgressFeed

log = logging.getLogger("opencode_live.server")

#: Longest question (and free-text quiz answer), in characters after stripping.
MAX_TEXT = 2000
#: Most questions sent in one list (the least voted answered ones are left off).
MAX_LISTED = 500
#: Jobs waiting on one room's lane before further messages are refused.
MAX_PENDING = 1000
#: Largest question id Postgres can hold (bigint): anything above is no question.
MAX_ID = 2**63 - 1
#: Bytes a list message may take besides its texts (per item: ids, names, times).
ITEM_OVERHEAD = 256
#: Longest a cached list of a room shared with other nodes is used: what a lost
#: bus notice can leave stale is bounded by it (one read per this, at most).
SHARED_LISTING_SECONDS = 5.0
#: Reads of a list in a row that notices from other nodes may overtake before
#: the last one is sent as it is (and not cached).
MAX_LIST_READS = 3

Job = Callable[[], Awaitable[None]]

LIST_READS = Counter(
    "opencode_live_question_list_reads_total",
    "Question lists read from the database (one list is shared by joiners until it changes)",
)


class Notice(msgspec.Struct, array_like=True, frozen=True):
    """What one node tells the same room's question service on the others.

    ``kind`` "list": the (room, ``demo``)'s questions changed (drop the cached
    list); "tally": a quiz answer to ``step`` of ``demo`` was stored (send the
    staff here the step's counts again).
    """

    kind: str
    demo: str
    step: str = ""


_notice_encoder = msgspec.msgpack.Encoder()
_notice_decoder = msgspec.msgpack.Decoder(Notice)


class Refused(Exception):
    """A message turned down; ``code`` is the notice code, the text says why."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def question_item(q: Question, given: Sequence[answers.Answer] = ()) -> QuestionItem:
    return QuestionItem(
        id=q.id,
        demo=q.demo_id,
        text=q.text,
        by=q.by_name,
        votes=q.votes,
        answered=q.answered,
        created=q.created_at.timestamp() * 1000.0,
        step=q.step_id,
        at=q.at,
        user=str(q.asked_by),
        answers=[
            AnswerItem(
                id=a.id,
                text=a.text,
                by=a.by_name,
                user=str(a.user_id),
                accepted=a.accepted,
                created=a.created_ms,
            )
            for a in given
        ],
    )


def view_item(view: QuestionView) -> QuestionItem:
    return question_item(view.question, view.answers)


def tally_of(
    demo_id: str, step_id: str, question: DemoQuestion, counts: Iterable[QuizCount]
) -> QuizTally:
    """The ``quiz.tally`` of a step from the stored counts (per choice, total, right)."""
    per_choice = [0] * len(question.choices or [])
    total = correct = 0
    for count in counts:
        if count.step_id != step_id:
            continue
        total += count.answers
        correct += count.correct
        if count.choice is not None and 0 <= count.choice < len(per_choice):
            per_choice[count.choice] += count.answers
    return QuizTally(demo=demo_id, step=step_id, counts=per_choice, total=total, correct=correct)


def question_steps(demo: Demo) -> list[tuple[str, DemoQuestion]]:
    """The steps that ask something, in document order."""
    return [(s.id, s.question) for s in demo.steps or [] if s.question is not None]


def check_answer(
    question: DemoQuestion, choice: int | None, text: str | None
) -> tuple[int | None, str | None, bool | None]:
    """The answer as stored (choice, text) and whether it is right (None: no right answer).

    A multiple-choice question takes a choice's index, or a choice's exact text;
    a free-text question takes text. Raises Refused naming what was wrong.
    """
    choices = question.choices
    if choices:
        if choice is None and text is not None and text.strip() in choices:
            choice = choices.index(text.strip())
        if choice is None:
            raise Refused(
                "bad-quiz-answer",
                f"this question has {len(choices)} choices: answer with a choice's index "
                f"(0 to {len(choices) - 1})",
            )
        if not 0 <= choice < len(choices):
            raise Refused(
                "bad-quiz-answer",
                f"choice {choice} is out of range: this question has choices 0 to "
                f"{len(choices) - 1}",
            )
        answer = question.answer
        if answer is None:
            return choice, None, None
        right = answer if isinstance(answer, int) else choices.index(answer)
        return choice, None, choice == right
    if choice is not None:
        raise Refused("bad-quiz-answer", "this question has no choices: answer with text")
    cleaned = (text or "").strip()
    if not cleaned:
        raise Refused("bad-quiz-answer", "an answer needs some text")
    if len(cleaned) > MAX_TEXT:
        raise Refused("bad-quiz-answer", f"an answer has at most {MAX_TEXT} characters")
    if "\x00" in cleaned:
        raise Refused("bad-quiz-answer", "an answer cannot contain NUL characters")
    expected = question.answer
    if not isinstance(expected, str):
        return None, cleaned, None
    return None, cleaned, cleaned.casefold() == expected.strip().casefold()


def place_question(
    room: Room, timeline: Timeline, step: str | None, at: float | None
) -> tuple[str | None, float | None]:
    """Where a question attaches: the step or time given, else where the room's playback is."""
    walkthrough = timeline.kind == "walkthrough"
    if step is not None:
        if step not in timeline.steps:
            raise Refused("bad-question", f"the demo {timeline.demo!r} has no step {step!r}")
    if at is not None:
        if walkthrough:
            raise Refused("bad-question", "a walkthrough's questions attach to a step, not a time")
        if not math.isfinite(at) or not 0 <= at <= timeline.duration:
            raise Refused("bad-question", f"at must be between 0 and {timeline.duration:g} seconds")
    if step is not None or at is not None:
        return step, at
    position = room.playback.position_at(server_time_ms())
    if walkthrough:
        if not timeline.steps:
            return None, None
        index = min(max(round(position), 0), len(timeline.steps) - 1)
        return timeline.steps[index], None
    return None, round(position, 3)


def bounded(items: Sequence[QuestionView], budget: int) -> list[QuestionView]:
    """As many items (in listing order) as fit a message of ``budget`` bytes."""
    kept: list[QuestionView] = []
    used = 0
    for item in items[:MAX_LISTED]:
        q = item.question
        used += len(q.text.encode("utf-8")) + len(q.by_name.encode("utf-8")) + ITEM_OVERHEAD
        for a in item.answers:
            used += len(a.text.encode("utf-8")) + len(a.by_name.encode("utf-8")) + ITEM_OVERHEAD
        if used > budget:
            break
        kept.append(item)
    return kept


@dataclass(frozen=True, slots=True)
class Listing:
    """One (room, demo)'s question list as every joiner gets it, and each person's votes."""

    items: list[QuestionItem]
    voted: dict[uuid.UUID, list[int]]
    #: ``time.monotonic()`` of the read (a shared room's list is used for a bounded time).
    read_at: float = 0.0


class QuestionService:
    #: Its name on the bus (``rooms.RemoteService``).
    remote_tag = "questions"

    #: The room messages this service takes (``rooms.RoomService``).
    messages: tuple[type, ...] = (
        QuestionAsk,
        QuestionVote,
        QuestionAnswered,
        QuestionAnswer,
        QuestionAccept,
        QuizAnswer,
    )

    def __init__(
        self, store: Store, library: DemoLibrary, feed: ProgressFeed | None = None
    ) -> None:
        self.store = store
        self.library = library
        #: Where asked questions and accepted answers go as progress events.
        self.feed = feed
        #: Jobs waiting per room, each room's run in order by one task.
        self._lanes: dict[Room, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: The list per (room id, demo), shared by joiners until it changes.
        self._listings: dict[tuple[str, str], Listing] = {}
        #: Joiners waiting for their list, per room: one lane job answers them all.
        self._greeting: dict[Room, list[Connection]] = {}
        #: Per (room id, demo): moved by every change, local or told by another node, so
        #: that a read a change overtook is neither cached nor sent.
        self._generations: dict[tuple[str, str], int] = {}
        #: Tallies to send this node's staff again, per room: (demo, step) told by other nodes.
        self._retally: dict[Room, set[tuple[str, str]]] = {}
        #: Monotonic clock (a parameter for tests).
        self.clock: Callable[[], float] = time.monotonic

    # -- rooms.RoomService ---------------------------------------------------

    def handle(self, room: Room, conn: Connection, msg: QuestionMessage) -> None:
        try:
            if isinstance(msg, QuestionAsk):
                job = self._ask(room, conn, msg)
            elif isinstance(msg, QuestionVote):
                job = self._vote(room, conn, msg)
            elif isinstance(msg, QuestionAnswered):
                job = self._answered(room, conn, msg)
            elif isinstance(msg, QuestionAnswer):
                job = self._answer(room, conn, msg)
            elif isinstance(msg, QuestionAccept):
                job = self._accept(room, conn, msg)
            else:
                job = self._quiz(room, conn, msg)
        except Refused as refused:
            room.notify(conn, "error", refused.code, refused.text)
            return
        self._enqueue(room, conn, job)

    def greet(self, room: Room, conn: Connection) -> None:
        if room.playback.demo is None:
            return
        waiting = self._greeting.get(room)
        if waiting is not None:  # a job is on its way for the joiners before: it takes this one
            waiting.append(conn)
            return
        self._greeting[room] = [conn]

        async def job() -> None:
            joiners = [c for c in self._greeting.pop(room, []) if c in room.connections]
            demo_id = room.playback.demo
            if joiners and demo_id is not None:
                await self._send_lists(room, demo_id, joiners)

        if not self._enqueue(room, conn, job):
            self._greeting.pop(room, None)

    def left(self, room: Room, conn: Connection) -> None:
        """Nothing is held for a connection: what it asked stays with the room."""

    def demo_loaded(self, room: Room) -> None:
        demo_id = room.playback.demo
        if demo_id is None:
            return

        async def job() -> None:
            await self._send_lists(room, demo_id, list(room.connections))

        self._enqueue(room, None, job)

    def room_unloaded(self, room: Room) -> None:
        """Questions live in the database; a lane ends by itself once drained."""
        for key in [k for k in self._listings if k[0] == room.id]:
            del self._listings[key]
        for key in [k for k in self._generations if k[0] == room.id]:
            del self._generations[key]
        self._greeting.pop(room, None)
        self._retally.pop(room, None)

    # -- rooms.RemoteService ---------------------------------------------------

    def remote(self, room: Room, payload: bytes) -> None:
        """A notice from the same room on another node (``Notice``)."""
        try:
            notice = _notice_decoder.decode(payload)
        except msgspec.MsgspecError:
            log.warning("questions: bad notice from another node", extra={"room": room.id})
            return
        if notice.kind == "list":
            self._forget(room.id, notice.demo)
        elif notice.kind == "tally" and notice.step:
            self._tally_again(room, notice.demo, notice.step)

    def _changed(self, room: Room, demo_id: str) -> None:
        """Something in this (room, demo)'s list changed: the next joiner reads it again,
        here and on the other nodes (told before the change is broadcast: see the module
        docstring)."""
        self._forget(room.id, demo_id)
        room.send_service(self.remote_tag, _notice_encoder.encode(Notice("list", demo_id)))

    def _forget(self, room_id: str, demo_id: str) -> None:
        key = (room_id, demo_id)
        self._listings.pop(key, None)
        self._generations[key] = self._generations.get(key, 0) + 1

    def _tally_again(self, room: Room, demo_id: str, step_id: str) -> None:
        """Another node stored a quiz answer: this node's staff get the step's counts
        as Postgres now has them (one job for the answers told meanwhile)."""
        if not any(c.extension and can_control_demo(c.person, c.role) for c in room.connections):
            return
        waiting = self._retally.get(room)
        if waiting is not None:  # a job is on its way: it takes this step too
            waiting.add((demo_id, step_id))
            return
        self._retally[room] = {(demo_id, step_id)}

        async def job() -> None:
            steps = self._retally.pop(room, set())
            staff = [
                c for c in room.connections if c.extension and can_control_demo(c.person, c.role)
            ]
            if not staff:
                return
            for demo_id, step_id in sorted(steps):
                demo = await self.library.demo(demo_id)
                asked = dict(question_steps(demo)) if demo is not None else {}
                question = asked.get(step_id)
                if question is None:
                    continue
                counts = await self.store.quiz_counts(room.id, demo_id)
                tally = tally_of(demo_id, step_id, question, counts)
                for peer in staff:
                    if peer in room.connections:
                        room.send_room(peer, tally)

        if not self._enqueue(room, None, job):
            self._retally.pop(room, None)

    async def close(self) -> None:
        """Stop the lanes (at shutdown): what is still queued is dropped."""
        self._lanes.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the messages ----------------------------------------------------------

    def _ask(self, room: Room, conn: Connection, msg: QuestionAsk) -> Job:
        demo_id, timeline = room.playback.demo, room.timeline
        if demo_id is None or timeline is None:
            raise Refused(
                "bad-question", "no demo is loaded in this room: questions are about a demo"
            )
        text = msg.text.strip()
        if not text:
            raise Refused("bad-question", "a question needs some text")
        if len(text) > MAX_TEXT:
            raise Refused(
                "bad-question",
                f"a question has at most {MAX_TEXT} characters; this one has {len(text)}",
            )
        if "\x00" in text:  # Postgres text cannot hold it: refused, not an error of ours
            raise Refused("bad-question", "a question cannot contain NUL characters")
        step, at = place_question(room, timeline, msg.step, msg.at)
        asker = conn.person.user_id

        async def job() -> None:
            question = await self.store.ask_question(room.id, demo_id, step, at, text, asker)
            self._changed(room, demo_id)
            room.broadcast_room(question_item(question))
            if self.feed is not None:
                self.feed.submit(
                    QuestionAsked(
                        key=f"question:{question.id}:asked",
                        user_id=asker,
                        occurred_at=datetime.now(UTC),
                        question_id=question.id,
                        room_id=room.id,
                    ),
                    room_id=room.id,
                )

        return job

    def _vote(self, room: Room, conn: Connection, msg: QuestionVote) -> Job:
        question_id = _question_id(msg.id)
        voter = conn.person.user_id

        async def job() -> None:
            result = await self.store.vote_question(room.id, question_id, voter, msg.up)
            if result.status == "missing":
                raise Refused("bad-question", f"there is no question {question_id} in this room")
            if result.status == "own":
                raise Refused("bad-question", "you cannot vote on your own question")
            assert result.question is not None
            view = await answers.get_question(self.store, room.id, question_id)
            item = view_item(view) if view is not None else question_item(result.question)
            if result.status == "unchanged":  # nothing new for the room: tell the voter only
                room.send_room(conn, item)
            else:
                self._changed(room, result.question.demo_id)
                room.broadcast_room(item)

        return job

    def _answered(self, room: Room, conn: Connection, msg: QuestionAnswered) -> Job:
        if not can_control_demo(conn.person, conn.role):
            raise Refused(
                "permission-denied",
                "marking questions answered needs an instructor or teaching assistant who can "
                f"edit this room; you are {conn.role.with_article} here",
            )
        question_id = _question_id(msg.id)

        async def job() -> None:
            question = await self.store.mark_answered(room.id, question_id, msg.answered)
            if question is None:
                raise Refused("bad-question", f"there is no question {question_id} in this room")
            self._changed(room, question.demo_id)
            view = await answers.get_question(self.store, room.id, question_id)
            room.broadcast_room(view_item(view) if view is not None else question_item(question))

        return job

    def _answer(self, room: Room, conn: Connection, msg: QuestionAnswer) -> Job:
        question_id = _question_id(msg.id)
        if len(msg.text) > 4 * MAX_TEXT:  # before any stripping work
            raise Refused("bad-question", f"an answer has at most {MAX_TEXT} characters")
        text = msg.text.strip()
        if not text:
            raise Refused("bad-question", "an answer needs some text")
        if len(text) > MAX_TEXT:
            raise Refused(
                "bad-question",
                f"an answer has at most {MAX_TEXT} characters; this one has {len(text)}",
            )
        if "\x00" in text:
            raise Refused("bad-question", "an answer cannot contain NUL characters")
        author = conn.person.user_id

        async def job() -> None:
            status, view = await answers.add_answer(self.store, room.id, question_id, author, text)
            if status == "missing":
                raise Refused("bad-question", f"there is no question {question_id} in this room")
            if status == "own":
                raise Refused(
                    "bad-question", "you cannot answer your own question: others answer it"
                )
            if status == "full":
                raise Refused(
                    "bad-question",
                    f"question {question_id} has {answers.MAX_ANSWERS} answers already",
                )
            assert view is not None
            self._changed(room, view.question.demo_id)
            room.broadcast_room(view_item(view))

        return job

    def _accept(self, room: Room, conn: Connection, msg: QuestionAccept) -> Job:
        question_id = _question_id(msg.id)
        if not 1 <= msg.answer <= MAX_ID:
            raise Refused("bad-question", f"there is no answer {msg.answer}")
        answer_id = msg.answer
        who = conn.person.user_id
        staff = can_control_demo(conn.person, conn.role)

        async def job() -> None:
            done = await answers.accept_answer(
                self.store, room.id, question_id, answer_id, who, staff=staff
            )
            if done.status == "missing":
                raise Refused("bad-question", f"there is no question {question_id} in this room")
            if done.status == "forbidden":
                raise Refused(
                    "permission-denied",
                    "only the person who asked, or an instructor or teaching assistant who "
                    "can edit this room, accepts an answer",
                )
            if done.status == "no-answer":
                raise Refused("bad-question", f"question {question_id} has no answer {answer_id}")
            if done.status == "taken":
                raise Refused(
                    "bad-question", f"question {question_id} has an accepted answer already"
                )
            assert done.view is not None
            item = view_item(done.view)
            if done.status == "unchanged":  # accepted before: nothing new for the room
                room.send_room(conn, item)
                return
            self._changed(room, done.view.question.demo_id)
            room.broadcast_room(item)
            if self.feed is not None and done.author is not None and done.author != done.asker:
                self.feed.submit(
                    AnswerAccepted(
                        key=f"question:{question_id}:answered",
                        user_id=done.author,
                        occurred_at=datetime.now(UTC),
                        question_id=question_id,
                        room_id=room.id,
                    ),
                    room_id=room.id,
                )

        return job

    def _quiz(self, room: Room, conn: Connection, msg: QuizAnswer) -> Job:
        demo_id, timeline = room.playback.demo, room.timeline
        if demo_id is None or timeline is None:
            raise Refused("bad-quiz-answer", "no demo is loaded in this room")
        if msg.step not in timeline.steps:
            raise Refused("bad-quiz-answer", f"the demo {demo_id!r} has no step {msg.step!r}")
        if msg.text is not None and len(msg.text) > 4 * MAX_TEXT:  # before any stripping work
            raise Refused("bad-quiz-answer", f"an answer has at most {MAX_TEXT} characters")
        person = conn.person.user_id
        step_id = msg.step

        async def job() -> None:
            demo = await self.library.demo(demo_id)
            if demo is None:
                raise Refused(
                    "bad-quiz-answer", f"the demo {demo_id!r} is no longer in the library"
                )
            question = next((q for s, q in question_steps(demo) if s == step_id), None)
            if question is None:
                raise Refused("bad-quiz-answer", f"step {step_id!r} does not ask a question")
            choice, text, correct = check_answer(question, msg.choice, msg.text)
            counts = await self.store.put_quiz_answer(
                room.id, demo_id, step_id, person, choice=choice, text=text, correct=correct
            )
            room.send_room(conn, QuizResult(step=step_id, correct=correct))
            room.send_service(
                self.remote_tag, _notice_encoder.encode(Notice("tally", demo_id, step_id))
            )
            tally = tally_of(demo_id, step_id, question, counts)
            for peer in room.connections:
                if can_control_demo(peer.person, peer.role):
                    room.send_room(peer, tally)

        return job

    async def _send_lists(self, room: Room, demo_id: str, conns: list[Connection]) -> None:
        """Each connection's ``questions`` (with its own votes) and, to staff, the tallies."""
        conns = [c for c in conns if c.extension]
        if not conns:
            return
        listing = await self._listing(room, demo_id)
        staff = [c for c in conns if can_control_demo(c.person, c.role)]
        tallies: list[QuizTally] = []
        if staff:
            demo = await self.library.demo(demo_id)
            if demo is not None:
                counts = await self.store.quiz_counts(room.id, demo_id)
                tallies = [tally_of(demo_id, s, q, counts) for s, q in question_steps(demo)]
        for conn in conns:
            if conn not in room.connections:
                continue
            voted = listing.voted.get(conn.person.user_id, [])
            room.send_room(conn, QuestionList(demo=demo_id, items=listing.items, voted=voted))
            if conn in staff:
                for tally in tallies:
                    room.send_room(conn, tally)

    async def _listing(self, room: Room, demo_id: str) -> Listing:
        """The (room, demo)'s list: from the last read unless something changed since.

        A read that a change told by another node overtook (the generation moved
        while it was on its way) may predate an item this node's people were already
        sent: it is read again, and kept only if nothing moved meanwhile.
        """
        key = (room.id, demo_id)
        listing = self._listings.get(key)
        if listing is not None:
            shared = room.cluster is not None
            if not shared or self.clock() - listing.read_at < SHARED_LISTING_SECONDS:
                return listing
            del self._listings[key]
        for _ in range(MAX_LIST_READS):
            generation = self._generations.get(key, 0)
            listing = await self._read_listing(room, demo_id)
            if self._generations.get(key, 0) == generation:
                self._listings[key] = listing
                return listing
        return listing

    async def _read_listing(self, room: Room, demo_id: str) -> Listing:
        LIST_READS.inc()
        read_at = self.clock()
        found = await answers.list_questions(self.store, room.id, demo_id, MAX_LISTED)
        limits = room.limits
        kept = bounded(found, min(limits.max_message_bytes, limits.send_queue_bytes // 4))
        voted: dict[uuid.UUID, list[int]] = {}
        for view in sorted(kept, key=lambda v: v.question.id):
            for voter in view.voters:
                voted.setdefault(voter, []).append(view.question.id)
        return Listing(items=[view_item(v) for v in kept], voted=voted, read_at=read_at)

    # -- the lanes -------------------------------------------------------------

    def _enqueue(self, room: Room, conn: Connection | None, job: Job) -> bool:
        lane = self._lanes.get(room)
        if lane is None:
            lane = self._lanes[room] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(room, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif len(lane) >= MAX_PENDING:
            if conn is not None:
                room.notify(conn, "error", "unavailable", "too many questions pending: try again")
            return False
        lane.append(self._guarded(room, conn, job))
        return True

    async def _drain(self, room: Room, lane: deque[Job]) -> None:
        try:
            while lane:
                await lane.popleft()()
        finally:
            if self._lanes.get(room) is lane:
                del self._lanes[room]

    def _guarded(self, room: Room, conn: Connection | None, job: Job) -> Job:
        """The job with its failures told to ``conn`` (the sender) and never past the lane."""

        async def run() -> None:
            try:
                await job()
            except Refused as refused:
                if conn is not None:
                    room.notify(conn, "error", refused.code, refused.text)
            except StoreUnavailable as exc:
                log.warning(
                    "questions: store unavailable", extra={"room": room.id, "error": str(exc)}
                )
                if conn is not None:
                    room.notify(
                        conn,
                        "error",
                        "unavailable",
                        f"questions cannot be read or saved now: {exc}",
                    )
            except Exception:
                log.exception("questions: job failed", extra={"room": room.id})
                if conn is not None:
                    room.notify(conn, "error", "unavailable", "questions failed on the server")

        return run


def _question_id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise Refused("bad-question", f"there is no question {value}")
    return value
