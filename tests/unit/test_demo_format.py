"""The demo format: examples validate, bad files give errors by file, step and field."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pycrdt
import pytest

from demos.format import (
    SCHEMA_PATH,
    Demo,
    DemoError,
    Output,
    Update,
    dump_demo,
    files_at_steps,
    highlight_range,
    load_demo,
    parse_demo,
    schema,
    validate_demo,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"


def walkthrough() -> dict[str, Any]:
    return {
        "format": "opencode-live/demo",
        "version": 1,
        "title": "Loops",
        "files": {"main.py": "x = 1\n"},
        "steps": [
            {
                "id": "start",
                "title": "Start",
                "highlights": [{"file": "main.py", "start": {"line": 1}}],
            },
            {
                "id": "add-loop",
                "title": "Add a loop",
                "changes": [
                    {
                        "op": "insert",
                        "path": "main.py",
                        "anchor": "x = 1\n",
                        "text": "for i in range(3):\n",
                    },
                    {"op": "insert", "path": "main.py", "text": "    print(i)\n"},
                ],
                "highlights": [{"file": "main.py", "pattern": r"range\(3\)"}],
            },
            {
                "id": "print-it",
                "title": "Print it",
                "changes": [{"op": "set", "path": "other.py", "text": "print('hi')\n"}],
                "highlights": [
                    {
                        "file": "main.py",
                        "start": {"line": 3, "column": 5},
                        "end": {"line": 3, "column": 13},
                    }
                ],
                "run": {"entry": "main.py"},
                "question": {"prompt": "How many lines?", "choices": ["2", "3"], "answer": 1},
                "branches": [{"label": "again", "to": "start"}],
            },
        ],
    }


def problems(doc: dict[str, Any], name: str = "loops.demo.json") -> list[str]:
    demo, found = parse_demo(json.dumps(doc), name)
    if not found:
        assert demo is not None
    return [str(p) for p in found]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.demo.json")), ids=lambda p: p.name)
def test_examples_validate(path: Path) -> None:
    demo = load_demo(path)
    assert demo.title
    # dump and parse again: the same demo
    again, found = parse_demo(dump_demo(demo), path.name)
    assert found == []
    assert again == demo


def test_examples_cover_both_kinds() -> None:
    kinds = {load_demo(p).kind for p in EXAMPLES.glob("*.demo.json")}
    assert kinds == {"walkthrough", "recording"}


def test_valid_walkthrough_and_files_through_steps() -> None:
    demo, found = parse_demo(json.dumps(walkthrough()))
    assert found == [] and demo is not None
    states = list(files_at_steps(demo))
    assert states[0] == {"main.py": "x = 1\n"}
    assert states[1]["main.py"] == "x = 1\nfor i in range(3):\n    print(i)\n"
    assert set(states[2]) == {"main.py", "other.py"}
    text = states[2]["main.py"]
    start, end = highlight_range(text, demo.steps[2].highlights[0])
    assert text[start:end] == "print(i)"
    start, end = highlight_range(states[1]["main.py"], demo.steps[1].highlights[0])
    assert states[1]["main.py"][start:end] == "range(3)"


def test_highlight_of_a_whole_line() -> None:
    demo, _ = parse_demo(json.dumps(walkthrough()))
    assert highlight_range("x = 1\n", demo.steps[0].highlights[0]) == (0, 5)


def test_error_names_file_step_and_field() -> None:
    doc = walkthrough()
    doc["steps"][2]["highlights"][0]["file"] = "mian.py"
    assert problems(doc) == [
        'loops.demo.json: steps[2] (id "print-it"): highlights[0].file: '
        'no file "mian.py" in the demo\'s files at this step'
    ]


def test_all_semantic_errors_are_collected() -> None:
    doc = walkthrough()
    doc["steps"][1]["id"] = "start"  # duplicate
    doc["steps"][2]["branches"].append({"label": "skip", "to": "nowhere"})
    doc["steps"][0]["highlights"][0]["start"] = {"line": 9}
    doc["steps"][2]["highlights"][0]["end"] = {"line": 3, "column": 99}
    doc["steps"][2]["question"]["answer"] = 5
    doc["steps"][2]["run"]["entry"] = "nope.py"
    doc["steps"][1]["changes"][0]["anchor"] = "not there"
    found = problems(doc)
    expected = [
        'steps[1] (id "start"): id: duplicate step id "start" (first used by steps[0])',
        'steps[0] (id "start"): highlights[0].start: line 9 is past the end of the file (2 lines)',
        'steps[1] (id "start"): changes[0]: anchor "not there" not found in "main.py"',
        'steps[2] (id "print-it"): run.entry: no file "nope.py"',
        'steps[2] (id "print-it"): question.answer: index 5 is not one of the 2 choices',
        'steps[2] (id "print-it"): branches[1].to: no step with id "nowhere"',
    ]
    for part in expected:
        assert any(part in line for line in found), (part, found)
    assert all(line.startswith("loops.demo.json: ") for line in found)


def test_type_errors_in_several_steps_are_all_reported() -> None:
    doc = walkthrough()
    doc["steps"][0]["title"] = 3
    doc["steps"][2]["naration"] = "typo"
    doc["steps"][1]["changes"][0]["op"] = "replace"
    found = problems(doc)
    assert len(found) == 3, found
    assert found[0] == 'loops.demo.json: steps[0] (id "start"): title: Expected `str`, got `int`'
    assert "unknown field `naration`" in found[2] and found[2].startswith(
        'loops.demo.json: steps[2] (id "print-it")'
    )
    assert 'steps[1] (id "add-loop"): changes[0].op' in found[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"op": "delete", "path": "gone.py"}, 'no file "gone.py"'),
        ({"op": "set", "path": "../up.py", "text": ""}, 'has an empty, "." or ".." part'),
        ({"op": "set", "path": "/abs.py", "text": ""}, "must be a relative path"),
        ({"op": "insert", "path": "main.py", "anchor": "1", "text": "!"}, "occurs 2 times"),
    ],
)
def test_bad_changes(change: dict[str, Any], message: str) -> None:
    doc = walkthrough()
    doc["files"]["main.py"] = "x = 1\ny = 1\n"
    doc["steps"][0]["changes"] = [change]
    found = problems(doc)
    assert any('steps[0] (id "start"): changes[0]: ' in line and message in line for line in found)


def test_highlight_needs_a_range_or_pattern_and_patterns_must_match() -> None:
    doc = walkthrough()
    doc["steps"][0]["highlights"] = [
        {"file": "main.py"},
        {"file": "main.py", "pattern": "("},
        {"file": "main.py", "pattern": "while"},
        {"file": "main.py", "pattern": "x", "start": {"line": 1}},
        {"file": "main.py", "start": {"line": 1, "column": 4}, "end": {"line": 1, "column": 2}},
    ]
    found = "\n".join(problems(doc))
    assert "highlights[0]: needs start" in found
    assert "highlights[1].pattern: not a valid regular expression" in found
    assert 'highlights[2].pattern: no match in "main.py"' in found
    assert "highlights[3]: give either start/end or pattern" in found
    assert "highlights[4].end: ends before it starts" in found


def test_files_follow_deletes() -> None:
    doc = walkthrough()
    doc["steps"][1]["changes"] = [{"op": "delete", "path": "main.py"}]
    doc["steps"][1]["highlights"] = []
    found = problems(doc)
    assert any(
        'steps[2] (id "print-it"): highlights[0].file: no file "main.py"' in f for f in found
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d.update(version=2),
            "unsupported version 2: this opencode-live reads version 1",
        ),
        (lambda d: d.update(version="1"), 'unsupported version "1"'),
        (lambda d: d.update(format="something"), 'format: expected "opencode-live/demo"'),
        (lambda d: d.pop("steps"), 'give exactly one timeline: "steps"'),
        (lambda d: d.update(recording={"events": []}), "give exactly one timeline"),
        (lambda d: d.update(steps=[]), "steps: a walkthrough needs at least one step"),
        (lambda d: d.pop("title"), "Object missing required field `title`"),
        (lambda d: d["files"].update({"a/../b.py": ""}), 'files["a/../b.py"]'),
    ],
)
def test_top_level_errors(mutate: Any, message: str) -> None:
    doc = copy.deepcopy(walkthrough())
    mutate(doc)
    found = problems(doc)
    assert any(message in line for line in found), found


def test_newer_version_is_refused_clearly() -> None:
    doc = walkthrough()
    doc["version"] = 7
    doc["steps"] = "whatever a future version holds"
    assert problems(doc) == [
        "loops.demo.json: version: unsupported version 7: this opencode-live reads version 1 "
        "(the file is from a newer release)"
    ]


def test_not_json_and_not_an_object() -> None:
    assert problems_of(b"{nope")[0].startswith("x.demo.json: not valid JSON")
    assert problems_of(b"[]") == ["x.demo.json: a demo is a JSON object"]


def problems_of(data: bytes) -> list[str]:
    return [str(p) for p in parse_demo(data, "x.demo.json")[1]]


def recording(events: list[dict[str, Any]], snapshots: list[dict[str, Any]] | None = None) -> dict:
    return {
        "format": "opencode-live/demo",
        "version": 1,
        "title": "rec",
        "recording": {"events": events, "snapshots": snapshots or []},
    }


def test_recording_with_a_real_yjs_update_round_trips() -> None:
    doc = pycrdt.Doc()
    doc["main.py"] = text = pycrdt.Text()
    text += "print('hi')\n"
    update = doc.get_update()
    raw = recording(
        [
            {"type": "update", "t": 0, "update": base64.b64encode(update).decode()},
            {"type": "cursor", "t": 0.5, "user": "ann", "file": "main.py", "anchor": 0, "head": 5},
            {"type": "output", "t": 1, "stream": "stdout", "data": "hi\n"},
            {"type": "marker", "t": 1, "label": "ran"},
        ],
        [{"t": 0.9, "state": base64.b64encode(update).decode()}],
    )
    demo, found = parse_demo(json.dumps(raw))
    assert found == [] and demo is not None and demo.kind == "recording"
    first = demo.recording.events[0]
    assert isinstance(first, Update) and first.update == update
    assert isinstance(demo.recording.events[2], Output)
    again = pycrdt.Doc()
    again.apply_update(demo.recording.snapshots[0].state)
    assert str(again.get("main.py", type=pycrdt.Text)) == "print('hi')\n"
    assert msgspec.json.decode(dump_demo(demo)) == msgspec.json.decode(
        msgspec.json.encode(msgspec.convert(raw, Demo))
    )


def test_recording_errors_are_all_collected() -> None:
    raw = recording(
        [
            {"type": "output", "t": 2, "stream": "stdout", "data": "a"},
            {"type": "output", "t": 1, "stream": "stdout", "data": "b"},
            {"type": "marker", "t": -1, "label": "neg"},
            {"type": "update", "t": 3, "update": "not base64!"},
            {"type": "cursor", "t": 3, "user": "u", "file": "f", "anchor": 0},
        ],
        [{"t": 1, "state": "%%%"}],
    )
    found = problems(raw)
    joined = "\n".join(found)
    assert "recording.events[1].t: 1 s is before the previous event's 2 s" in joined
    assert "recording.events[2].t: Expected `float` >= 0.0" in joined
    assert "recording.events[3].update: Invalid base64 encoded string" in joined
    assert "recording.events[4]: Object missing required field `head`" in joined
    assert "recording.snapshots[0].state: Invalid base64 encoded string" in joined


def test_load_demo_raises_with_every_problem(tmp_path: Path) -> None:
    doc = walkthrough()
    doc["steps"][0]["id"] = "add-loop"
    doc["steps"][2]["branches"][0]["to"] = "gone"
    path = tmp_path / "bad.demo.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DemoError) as caught:
        load_demo(path)
    assert len(caught.value.problems) == 2
    assert str(caught.value).count("bad.demo.json: ") == 2


def test_validate_demo_on_a_built_demo() -> None:
    demo = msgspec.convert(walkthrough(), Demo)
    assert validate_demo(demo) == []
    demo.steps[0].highlights[0].file = "nope"
    assert [p.where for p in validate_demo(demo)] == ['steps[0] (id "start"): highlights[0].file']


def test_shipped_schema_is_the_generated_one() -> None:
    """If this fails after changing the types, regenerate: see ``demos.format.schema_json``."""
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(json.dumps(schema()))
