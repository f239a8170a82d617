"""The room extension channel: MessagePack bodies on y-websocket message type 100.

Only clients that opted in (``?ext=1`` on the socket URL, or by sending a
``hello`` of their own) get these messages; a plain Yjs client never sees one.
docs/protocol.md documents every message and field.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

PROTOCOL_VERSION = 1


class ClientHello(msgspec.Struct, tag="hello", tag_field="type"):
    name: str | None = None


class Ping(msgspec.Struct, tag="ping", tag_field="type"):
    id: int = 0
    #: The client's own clock when it sent the ping (any unit; echoed back).
    client_time: float = 0.0


class DemoControl(msgspec.Struct, tag="demo", tag_field="type"):
    """A presenter's playback command (``demos.playback.ACTIONS``).

    ``seek`` takes one of ``position`` (seconds, or a walkthrough's step index),
    ``step`` (a step id) or ``marker`` (a recording marker's label).
    """

    action: str
    demo: str | None = None
    position: float | None = None
    step: str | None = None
    marker: str | None = None
    rate: float | None = None
    mode: str | None = None


class RecordControl(msgspec.Struct, tag="record", tag_field="type"):
    """Start or stop recording the room, or drop a marker (a chapter) into the recording.

    ``demo`` is the library id the recording is saved as (default: made from the
    room and the time); ``title`` its title; ``label`` a marker's label.
    """

    action: Literal["start", "stop", "marker"]
    demo: str | None = None
    title: str | None = None
    label: str | None = None


class QuestionAsk(msgspec.Struct, tag="question.ask", tag_field="type"):
    """A viewer's question, attached to the loaded demo's current step or time (or given ones)."""

    text: str
    step: str | None = None
    at: float | None = None


class QuestionVote(msgspec.Struct, tag="question.vote", tag_field="type"):
    """An upvote (``up`` false withdraws it); one per person per question."""

    id: int
    up: bool = True


class QuestionAnswered(msgspec.Struct, tag="question.answered", tag_field="type"):
    """The presenter marks a question answered (or not): staff only."""

    id: int
    answered: bool = True


class QuestionAnswer(msgspec.Struct, tag="question.answer", tag_field="type"):
    """An answer to someone else's question: anyone in the room."""

    id: int
    text: str


class QuestionAccept(msgspec.Struct, tag="question.accept", tag_field="type"):
    """The asker (or staff) accepts one answer of a question, once."""

    id: int
    answer: int


class QuizAnswer(msgspec.Struct, tag="quiz.answer", tag_field="type"):
    """An answer to a walkthrough step's question: a choice's index, or free text."""

    step: str
    choice: int | None = None
    text: str | None = None


class RunRequest(msgspec.Struct, tag="run", tag_field="type"):
    """Run the room's current files (or grade them against ``tests``)."""

    entry: str | None = None
    language: str | None = None
    stdin: str = ""


class RunInput(msgspec.Struct, tag="run.input", tag_field="type"):
    """Text for a running program's standard input; ``eof`` closes it."""

    run: str
    data: str = ""
    eof: bool = False


class RunStop(msgspec.Struct, tag="run.stop", tag_field="type"):
    run: str


RunMessage = RunRequest | RunInput | RunStop
QuestionMessage = (
    QuestionAsk | QuestionVote | QuestionAnswered | QuestionAnswer | QuestionAccept | QuizAnswer
)
ClientMessage = (
    ClientHello
    | Ping
    | DemoControl
    | RunRequest
    | RunInput
    | RunStop
    | RecordControl
    | QuestionAsk
    | QuestionVote
    | QuestionAnswered
    | QuestionAnswer
    | QuestionAccept
    | QuizAnswer
)


class ServerHello(msgspec.Struct, tag="hello", tag_field="type"):
    room: str
    protocol: int
    server_time: float
    connections: int
    document_version: int
    max_message_bytes: int
    #: Who the server thinks this is, and what they may do in the room.
    user: str = ""
    name: str = ""
    user_role: str = ""
    role: str = ""
    can_edit: bool = False


class Access(msgspec.Struct, tag="access", tag_field="type"):
    """The person's room role changed while connected."""

    role: str
    can_edit: bool


class Pong(msgspec.Struct, tag="pong", tag_field="type"):
    id: int
    client_time: float
    server_time: float


class Notice(msgspec.Struct, tag="notice", tag_field="type"):
    level: Literal["info", "warning", "error"]
    code: str
    text: str


class DemoState(msgspec.Struct, tag="demo.state", tag_field="type"):
    """The room's playback state; ``at`` is the server time (ms) it takes effect.

    Small and the same size whatever the demo: clients fetch the demo itself once.
    """

    demo: str | None
    position: float
    playing: bool
    rate: float
    at: float
    by: str = ""
    kind: str = ""
    duration: float = 0.0
    mode: str = "live"


class AnchoredHighlight(msgspec.Struct):
    file: str
    #: Yjs-encoded relative positions (``Y.decodeRelativePosition``) in the room's file.
    start: bytes
    end: bytes
    note: str | None = None


class DemoHighlights(msgspec.Struct, tag="demo.highlights", tag_field="type"):
    """The highlights of the demo step whose files were copied into the room."""

    demo: str
    step: str | None
    items: list[AnchoredHighlight]


class RecordState(msgspec.Struct, tag="record.state", tag_field="type"):
    """Whether the room is being recorded; after a stop, ``demo`` names the saved recording."""

    recording: bool
    by: str = ""
    #: Server time (ms) the recording started.
    started: float = 0.0
    demo: str | None = None
    events: int = 0


class Marker(msgspec.Struct, tag="record.marker", tag_field="type"):
    """A marker dropped into the recording, ``t`` seconds from its start."""

    t: float
    label: str


class AnswerItem(msgspec.Struct):
    """One answer to a question, oldest first in the question's ``answers``."""

    id: int
    text: str
    #: The answerer's name and user id.
    by: str
    user: str
    accepted: bool
    #: Server time (ms) it was given.
    created: float


class QuestionItem(msgspec.Struct, tag="question", tag_field="type"):
    """One question as it now stands: sent to everyone when it is asked, voted or answered."""

    id: int
    demo: str
    text: str
    by: str
    votes: int
    answered: bool
    #: Server time (ms) it was asked.
    created: float
    step: str | None = None
    at: float | None = None
    #: The asker's user id (the asker may accept an answer).
    user: str = ""
    answers: list[AnswerItem] = []


class QuestionList(msgspec.Struct, tag="questions", tag_field="type"):
    """Every question about the loaded demo in this room (on joining and on loading a demo)."""

    demo: str
    items: list[QuestionItem]
    #: Ids this person has upvoted.
    voted: list[int] = []


class QuizTally(msgspec.Struct, tag="quiz.tally", tag_field="type"):
    """The live count of answers to a step's question: to staff only."""

    demo: str
    step: str
    #: Answers per choice, in the choices' order (empty for a free-text question).
    counts: list[int]
    total: int
    correct: int


class QuizResult(msgspec.Struct, tag="quiz.result", tag_field="type"):
    """To the person who answered: stored, and whether it was right (None: no right answer)."""

    step: str
    correct: bool | None


class RunLanguage(msgspec.Struct):
    name: str
    #: The file run when a request names none, if it is in the room.
    entry: str
    extensions: list[str]


class RunLanguages(msgspec.Struct, tag="run.languages", tag_field="type"):
    """What this server runs: the page picks the default entry by the same rule as the server."""

    languages: list[RunLanguage]


class RunStarted(msgspec.Struct, tag="run.started", tag_field="type"):
    run: str
    by: str
    language: str
    entry: str
    #: Server time (ms) the run started.
    at: float


class RunOutput(msgspec.Struct, tag="run.output", tag_field="type"):
    run: str
    stream: Literal["stdout", "stderr"]
    data: str
    #: Chunks of one run are numbered from 0, in the order printed.
    seq: int


class RunTest(msgspec.Struct):
    name: str
    passed: bool
    message: str = ""


class RunExit(msgspec.Struct, tag="run.exit", tag_field="type"):
    run: str
    status: str
    exit_code: int | None
    signal: int | None
    wall_ms: float
    cpu_ms: float
    peak_memory_bytes: int
    output_truncated: bool
    message: str
    tests: list[RunTest] | None = None
    score: float | None = None


class ProgressAward(msgspec.Struct, tag="progress.award", tag_field="type"):
    """Someone in the room passed an exercise or earned an achievement (told after the
    ledger recorded it, to the room they named when submitting)."""

    user: str
    name: str
    kind: Literal["exercise-passed", "achievement"]
    #: The exercise's or the achievement's title.
    title: str
    #: XP it earned (0 when, say, the same code passed before).
    xp: int


ServerMessage = (
    ServerHello
    | Access
    | Pong
    | Notice
    | DemoState
    | DemoHighlights
    | RunLanguages
    | RunStarted
    | RunOutput
    | RunExit
    | RecordState
    | Marker
    | QuestionItem
    | QuestionList
    | QuizTally
    | QuizResult
    | ProgressAward
)

_decoder = msgspec.msgpack.Decoder(ClientMessage)
_server_decoder = msgspec.msgpack.Decoder(ServerMessage)
_encoder = msgspec.msgpack.Encoder()


class ExtensionError(ValueError):
    """A body that is not a known extension message; told to the client as a notice."""


def decode_client(body: bytes) -> ClientMessage:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ExtensionError(f"invalid room message: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ExtensionError(f"room message is not MessagePack: {exc}") from exc


def encode_server(message: ServerMessage) -> bytes:
    return _encoder.encode(message)


def decode_server(body: bytes) -> ServerMessage:
    """A server message another node sent (for this node's recordings); raises ExtensionError."""
    try:
        return _server_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ExtensionError(f"invalid server message: {exc}") from exc


def server_time_ms() -> float:
    """The server's wall clock in milliseconds: the base clients sync demo clocks to."""
    return time.time() * 1000.0
