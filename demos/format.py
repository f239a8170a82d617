"""The demo file format, version 1: typed structures, loading, and validation.

A demo is a JSON document ``{"format": "opencode-live/demo", "version": 1, ...}``
with a title, the starting files (path -> text) and exactly one timeline:

* ``steps``: a *walkthrough*. Each step has narration (Markdown), file changes
  (``set`` a file, ``delete`` it, ``insert`` text before/after an anchor text),
  highlights (a line/column range or a regular-expression pattern in a file),
  an optional run, an optional question and optional branches to other steps.
* ``recording``: timed events (Yjs workspace updates, cursor moves, run output,
  markers) plus periodic snapshots of the whole Yjs state, so that seeking to
  any time starts from the nearest snapshot instead of replaying everything.

Why the files at a step are defined by *document order* (the starting files
plus the changes of every step up to and including it) and not by the path a
presenter took through branches: a late joiner or a seek must be able to build
the workspace of a step from the demo alone, the same for everyone.

Positions are 1-based lines and 1-based columns (as in CodeTour and editors'
status bars); an end column is exclusive, so ``column = len(line) + 1`` is the
end of a line. A highlight without ``end`` covers its whole start line.

The version is checked before anything else so that a file from a newer
release is refused with a clear message instead of a pile of field errors.
Parsing collects every problem it can find (one type error per step, event or
snapshot at most, since msgspec stops at the first error in a value) and names
the file, the step (index and id) and the field of each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

FORMAT = "opencode-live/demo"
VERSION = 1
#: The suffix ``opencode-live demo validate`` looks for in folders.
SUFFIX = ".demo.json"

StepId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Line = Annotated[int, msgspec.Meta(ge=1)]
Column = Annotated[int, msgspec.Meta(ge=1)]
Offset = Annotated[int, msgspec.Meta(ge=0)]


class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Unknown fields are errors so that a misspelt key (``naration``) is reported, not ignored."""


# --- walkthrough -----------------------------------------------------------------------------


class Position(_Base):
    line: Line
    column: Column = 1


class SetFile(_Base, tag="set", tag_field="op"):
    """Create a file or replace its whole text."""

    path: str
    text: str


class DeleteFile(_Base, tag="delete", tag_field="op"):
    path: str


class InsertText(_Base, tag="insert", tag_field="op"):
    """Insert ``text`` before or after ``anchor`` (which must occur exactly once), or at the end.

    An anchor text rather than a line number, so that editing earlier steps does
    not silently move where later steps insert (CodeTour's line numbers drift).
    """

    path: str
    text: str
    anchor: str | None = None
    where: Literal["after", "before"] = "after"


Change = SetFile | DeleteFile | InsertText


class Highlight(_Base):
    """A range to show in a file: ``start``/``end`` positions, or a regular expression."""

    file: str
    start: Position | None = None
    end: Position | None = None
    pattern: str | None = None
    note: str | None = None


class Run(_Base):
    """Run the workspace; ``entry`` is the file to run (default: the language's usual one)."""

    entry: str | None = None


class Question(_Base):
    """A question to the room; ``answer``: a choice's index or text, or free text."""

    prompt: str
    choices: list[str] | None = None
    answer: int | str | None = None


class Branch(_Base):
    label: str
    to: str


class Step(_Base):
    id: StepId
    title: str
    narration: str = ""
    changes: list[Change] = []
    highlights: list[Highlight] = []
    run: Run | None = None
    question: Question | None = None
    branches: list[Branch] = []


# --- recording -------------------------------------------------------------------------------


class Update(_Base, tag="update", tag_field="type"):
    """A Yjs update to the workspace document (base64 in JSON)."""

    t: Seconds
    update: bytes


class Cursor(_Base, tag="cursor", tag_field="type"):
    """A user's selection in a file as character offsets (``anchor`` == ``head``: a caret)."""

    t: Seconds
    user: str
    file: str
    anchor: Offset
    head: Offset


class Output(_Base, tag="output", tag_field="type"):
    """A chunk of a run's terminal: ``stdin`` is what was typed (asciicast ``i`` events)."""

    t: Seconds
    stream: Literal["stdout", "stderr", "stdin"]
    data: str
    run: str | None = None


class Marker(_Base, tag="marker", tag_field="type"):
    """A chapter mark to seek to."""

    t: Seconds
    label: str


Event = Update | Cursor | Output | Marker


class Snapshot(_Base):
    """The whole Yjs state at ``t`` (base64 in JSON): seeking starts from the nearest one."""

    t: Seconds
    state: bytes


class Recording(_Base):
    events: list[Event] = []
    snapshots: list[Snapshot] = []
    duration: Seconds | None = None


# --- the document ----------------------------------------------------------------------------


class Demo(_Base):
    format: Literal["opencode-live/demo"]
    version: Literal[1]
    title: str
    description: str = ""
    files: dict[str, str] = {}
    steps: list[Step] | None = None
    recording: Recording | None = None

    @property
    def kind(self) -> Literal["walkthrough", "recording"]:
        return "recording" if self.recording is not None else "walkthrough"


class _Header(_Base):
    """The top level with the timeline left untyped, so steps and events are checked one by one."""

    format: str
    version: int
    title: str
    description: str = ""
    files: dict[str, str] = {}
    steps: list[Any] | None = None
    recording: Any = None


class _RecordingShell(_Base):
    events: list[Any] = []
    snapshots: list[Any] = []
    duration: Seconds | None = None


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a demo file: where (file, step, field) and what."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.where}: {self.message}"
            if self.where
            else (f"{self.file}: {self.message}")
        )


class DemoError(ValueError):
    """A demo that does not validate; ``problems`` holds every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_AT = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


def _split_msgspec(error: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's ``Expected ... - at `$.a[0].b``` as (``a[0].b``, ``Expected ...``)."""
    text = str(error)
    match = _AT.match(text)
    if not match:
        return "", text
    return match["path"].lstrip("."), match["message"]


def _join(*parts: str) -> str:
    out = ""
    for part in parts:
        if not part:
            continue
        if not out or part.startswith("["):
            out += part
        else:
            out += "." + part
    return out


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, where, message))

    def convert(self, value: Any, type_: Any, prefix: str, label: str | None = None) -> Any:
        """``msgspec.convert`` that records a failure at ``label`` (or ``prefix``) + its path."""
        try:
            return msgspec.convert(value, type_)
        except msgspec.ValidationError as exc:
            path, message = _split_msgspec(exc)
            if label is not None:
                where = f"{label}: {path}" if path else label
            else:
                where = _join(prefix, path)
            self.add(where, message)
            return None


def _step_label(index: int, step_id: object) -> str:
    if isinstance(step_id, str) and step_id:
        return f'steps[{index}] (id "{step_id}")'
    return f"steps[{index}]"


# --- files through the steps -----------------------------------------------------------------


def check_path(path: str) -> str | None:
    """Why ``path`` is not a usable workspace path (relative, ``/``-separated, no ``..``)."""
    if not path:
        return "empty path"
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        return f'"{path}" must be a relative path with "/" separators'
    if any(part in ("", ".", "..") for part in path.split("/")):
        return f'"{path}" has an empty, "." or ".." part'
    return None


def _anchor_offset(text: str, change: InsertText) -> tuple[int | None, str | None]:
    """Where ``change`` inserts in ``text``, or why it cannot."""
    if change.anchor is None:
        return len(text), None
    if change.anchor == "":
        return None, "empty anchor"
    count = text.count(change.anchor)
    if count == 0:
        return None, f'anchor "{change.anchor}" not found in "{change.path}"'
    if count > 1:
        return None, (
            f'anchor "{change.anchor}" occurs {count} times in "{change.path}"; make it unique'
        )
    found = text.index(change.anchor)
    return (found + len(change.anchor) if change.where == "after" else found), None


def apply_change(files: dict[str, str], change: Change) -> str | None:
    """Apply one change to ``files`` in place; the reason it cannot apply, or None."""
    if isinstance(change, SetFile):
        files[change.path] = change.text
        return None
    if change.path not in files:
        return f'no file "{change.path}" in the demo\'s files at this step'
    if isinstance(change, DeleteFile):
        del files[change.path]
        return None
    text = files[change.path]
    offset, why = _anchor_offset(text, change)
    if offset is None:
        return why
    files[change.path] = text[:offset] + change.text + text[offset:]
    return None


def files_at_steps(demo: Demo) -> Iterator[dict[str, str]]:
    """The workspace after each step in document order (a fresh dict per step).

    Changes that cannot apply are skipped; a validated demo has none.
    """
    files = dict(demo.files)
    for step in demo.steps or []:
        for change in step.changes:
            apply_change(files, change)
        yield dict(files)


def highlight_range(text: str, highlight: Highlight) -> tuple[int, int] | None:
    """The character offsets ``[start, end)`` a highlight covers in ``text``, or None if it cannot.

    A pattern matches with ``re.MULTILINE``; its first match is the range.
    """
    if highlight.pattern is not None:
        try:
            match = re.search(highlight.pattern, text, re.MULTILINE)
        except re.error:
            return None
        return (match.start(), match.end()) if match else None
    if highlight.start is None:
        return None
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(pos: Position) -> int | None:
        if pos.line > len(lines) or pos.column > len(lines[pos.line - 1]) + 1:
            return None
        return starts[pos.line - 1] + pos.column - 1

    begin = offset(highlight.start)
    if highlight.end is None:
        end = (
            None
            if begin is None
            else starts[highlight.start.line - 1] + len(lines[highlight.start.line - 1])
        )
    else:
        end = offset(highlight.end)
    if begin is None or end is None or end < begin:
        return None
    return begin, end


# --- semantic checks -------------------------------------------------------------------------


def _check_position(text: str, pos: Position, where: str, out: _Collector) -> bool:
    lines = text.split("\n")
    if pos.line > len(lines):
        out.add(where, f"line {pos.line} is past the end of the file ({len(lines)} lines)")
        return False
    width = len(lines[pos.line - 1])
    if pos.column > width + 1:
        out.add(
            where, f"column {pos.column} is past the end of line {pos.line} ({width} characters)"
        )
        return False
    return True


def _check_highlight(files: dict[str, str], hl: Highlight, label: str, out: _Collector) -> None:
    if hl.file not in files:
        out.add(f"{label}.file", f'no file "{hl.file}" in the demo\'s files at this step')
        return
    text = files[hl.file]
    if hl.pattern is not None:
        if hl.start is not None or hl.end is not None:
            out.add(label, "give either start/end or pattern, not both")
            return
        try:
            compiled = re.compile(hl.pattern, re.MULTILINE)
        except re.error as exc:
            out.add(f"{label}.pattern", f"not a valid regular expression: {exc}")
            return
        if not compiled.search(text):
            out.add(f"{label}.pattern", f'no match in "{hl.file}" at this step')
        return
    if hl.start is None:
        out.add(label, "needs start (and optionally end) or pattern")
        return
    ok = _check_position(text, hl.start, f"{label}.start", out)
    if hl.end is not None:
        ok = _check_position(text, hl.end, f"{label}.end", out) and ok
        if ok and (hl.end.line, hl.end.column) < (hl.start.line, hl.start.column):
            out.add(f"{label}.end", "ends before it starts")


def _check_question(q: Question, label: str, out: _Collector) -> None:
    if not q.prompt.strip():
        out.add(f"{label}.prompt", "empty prompt")
    if q.choices is None:
        if isinstance(q.answer, int):
            out.add(f"{label}.answer", "an answer by index needs choices")
        return
    if len(q.choices) < 2:
        out.add(f"{label}.choices", "give at least two choices (or none for a free answer)")
    if len(set(q.choices)) != len(q.choices):
        out.add(f"{label}.choices", "choices repeat")
    if isinstance(q.answer, int) and not 0 <= q.answer < len(q.choices):
        out.add(f"{label}.answer", f"index {q.answer} is not one of the {len(q.choices)} choices")
    elif isinstance(q.answer, str) and q.answer not in q.choices:
        out.add(f"{label}.answer", f'"{q.answer}" is not one of the choices')


def _check_steps(demo: Demo, raw_ids: list[object], out: _Collector) -> None:
    steps = demo.steps or []
    if not steps:
        out.add("steps", "a walkthrough needs at least one step")
    first: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.id in first:
            out.add(
                f"{_step_label(index, step.id)}: id",
                f'duplicate step id "{step.id}" (first used by steps[{first[step.id]}])',
            )
        else:
            first[step.id] = index
    known = set(first) | {i for i in raw_ids if isinstance(i, str)}
    files = dict(demo.files)
    for index, step in enumerate(steps):
        label = _step_label(index, step.id)
        if not step.title.strip():
            out.add(f"{label}: title", "empty title")
        for j, change in enumerate(step.changes):
            why = check_path(change.path)
            if why is None:
                why = apply_change(files, change)
            if why is not None:
                out.add(f"{label}: changes[{j}]", why)
        for j, hl in enumerate(step.highlights):
            _check_highlight(files, hl, f"{label}: highlights[{j}]", out)
        if step.run is not None and step.run.entry is not None and step.run.entry not in files:
            missing = f'no file "{step.run.entry}" in the demo\'s files at this step'
            out.add(f"{label}: run.entry", missing)
        if step.question is not None:
            _check_question(step.question, f"{label}: question", out)
        for j, branch in enumerate(step.branches):
            if not branch.label.strip():
                out.add(f"{label}: branches[{j}].label", "empty label")
            if branch.to not in known:
                out.add(f"{label}: branches[{j}].to", f'no step with id "{branch.to}"')


def _check_times(times: Iterable[float], what: str, out: _Collector) -> float:
    last = 0.0
    for index, t in enumerate(times):
        if t < last:
            out.add(
                f"recording.{what}[{index}].t",
                f"{t:g} s is before the previous {what[:-1]}'s {last:g} s "
                "(times must not decrease)",
            )
        else:
            last = t
    return last


def _check_recording(rec: Recording, out: _Collector) -> None:
    last = _check_times((e.t for e in rec.events), "events", out)
    _check_times((s.t for s in rec.snapshots), "snapshots", out)
    if rec.duration is not None and rec.duration < last:
        out.add("recording.duration", f"{rec.duration:g} s is before the last event at {last:g} s")


# --- entry points ----------------------------------------------------------------------------


def parse_demo(data: bytes | str, name: str = "<demo>") -> tuple[Demo | None, list[Problem]]:
    """Parse and validate a demo document: the demo (None if it cannot be built), all problems."""
    out = _Collector(name)
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        out.add("", f"not valid JSON: {exc}")
        return None, out.problems
    return _from_builtins(raw, out)


def _from_builtins(raw: Any, out: _Collector) -> tuple[Demo | None, list[Problem]]:
    if not isinstance(raw, dict):
        out.add("", "a demo is a JSON object")
        return None, out.problems
    if raw.get("format") != FORMAT:
        got = msgspec.json.encode(raw.get("format")).decode()
        out.add("format", f'expected "{FORMAT}", got {got}')
        return None, out.problems
    version = raw.get("version")
    if version != VERSION:
        shown = msgspec.json.encode(version).decode()
        out.add(
            "version",
            f"unsupported version {shown}: this opencode-live reads version {VERSION}"
            + (
                " (the file is from a newer release)"
                if isinstance(version, int) and version > VERSION
                else ""
            ),
        )
        return None, out.problems
    header = out.convert(raw, _Header, "")
    if header is None:
        return None, out.problems
    for path in header.files:
        why = check_path(path)
        if why is not None:
            out.add(f"files[{msgspec.json.encode(path).decode()}]", why)
    if (header.steps is None) == (header.recording is None):
        out.add("", 'give exactly one timeline: "steps" (a walkthrough) or "recording"')
        return None, out.problems
    demo = Demo(
        format=FORMAT,
        version=VERSION,
        title=header.title,
        description=header.description,
        files=header.files,
    )
    ok = True
    if header.steps is not None:
        steps: list[Step] = []
        raw_ids: list[object] = []
        for index, raw_step in enumerate(header.steps):
            step_id = raw_step.get("id") if isinstance(raw_step, dict) else None
            raw_ids.append(step_id)
            step = out.convert(raw_step, Step, "", label=_step_label(index, step_id))
            if step is None:
                ok = False
            else:
                steps.append(step)
        demo.steps = steps
        if ok:
            # Only once every step is typed: with a step missing, tracking the files
            # through the changes would report errors that are not there.
            _check_steps(demo, raw_ids, out)
    else:
        shell = out.convert(header.recording, _RecordingShell, "recording")
        if shell is None:
            return None, out.problems
        events = [
            out.convert(e, Event, f"recording.events[{i}]") for i, e in enumerate(shell.events)
        ]
        snaps = [
            out.convert(s, Snapshot, f"recording.snapshots[{i}]")
            for i, s in enumerate(shell.snapshots)
        ]
        ok = None not in events and None not in snaps
        demo.recording = Recording(
            events=[e for e in events if e is not None],
            snapshots=[s for s in snaps if s is not None],
            duration=shell.duration,
        )
        _check_recording(demo.recording, out)
    if out.problems:
        return (demo if ok else None), out.problems
    return demo, []


def validate_demo(demo: Demo, name: str = "<demo>") -> list[Problem]:
    """Every problem in an already-built demo (e.g. one made by an importer)."""
    return _from_builtins(msgspec.to_builtins(demo), _Collector(name))[1]


def load_demo(path: str | Path) -> Demo:
    """Read and validate a demo file; raises :class:`DemoError` with every problem."""
    path = Path(path)
    demo, problems = parse_demo(path.read_bytes(), path.name)
    if problems or demo is None:
        raise DemoError(problems)
    return demo


def dump_demo(demo: Demo) -> bytes:
    """A demo as indented JSON (stable field order), ready to save as ``*.demo.json``."""
    return msgspec.json.format(msgspec.json.encode(demo), indent=2) + b"\n"


def schema() -> dict[str, Any]:
    """The JSON Schema of the format, generated from the types (shipped as schema/demo-v1.json)."""
    generated = msgspec.json.schema(Demo)
    generated["$id"] = "https://opencode-live.invalid/schema/demo-v1.json"
    generated["title"] = "opencode-live demo, version 1"
    return generated


SCHEMA_PATH = Path(__file__).with_name("schema") / "demo-v1.json"


def schema_json() -> bytes:
    """The schema file's bytes. Regenerate the shipped file after changing the types with
    ``python -c "import demos.format as f; f.SCHEMA_PATH.write_bytes(f.schema_json())"``.
    """
    return msgspec.json.format(msgspec.json.encode(schema()), indent=2) + b"\n"
