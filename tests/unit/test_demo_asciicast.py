"""asciicast v2/v3 import as a recording, and export of run output as v2: round trips."""

from __future__ import annotations

import json

import pytest

from demos.asciicast import AsciicastError, export_asciicast, import_asciicast, parse_asciicast
from demos.format import Marker, Output, dump_demo, parse_demo, validate_demo

V2 = (
    "\n".join(
        [
            json.dumps({"version": 2, "width": 100, "height": 30, "title": "ls demo"}),
            json.dumps([0.25, "o", "$ "]),
            json.dumps([1.0, "i", "ls\r"]),
            json.dumps([1.1, "o", "ls\r\n"]),
            json.dumps([1.5, "m", "listing"]),
            json.dumps([1.5, "r", "90x20"]),
            json.dumps([2.0, "o", "a.txt  b.txt\r\n"]),
        ]
    )
    + "\n"
)

V3 = "\n".join(
    [
        json.dumps({"version": 3, "term": {"cols": 100, "rows": 30}, "title": "ls demo"}),
        "# a comment line",
        json.dumps([0.25, "o", "$ "]),
        json.dumps([0.75, "i", "ls\r"]),
        json.dumps([0.1, "o", "ls\r\n"]),
        "",
        json.dumps([0.4, "m", "listing"]),
        json.dumps([0.0, "r", "90x20"]),
        json.dumps([0.5, "o", "a.txt  b.txt\r\n"]),
        json.dumps([0.1, "x", "0"]),
    ]
)


def test_v2_import() -> None:
    cast = parse_asciicast(V2)
    assert (cast.version, cast.width, cast.height, cast.title) == (2, 100, 30, "ls demo")
    assert cast.events == [
        Output(t=0.25, stream="stdout", data="$ "),
        Output(t=1.0, stream="stdin", data="ls\r"),
        Output(t=1.1, stream="stdout", data="ls\r\n"),
        Marker(t=1.5, label="listing"),
        Output(t=2.0, stream="stdout", data="a.txt  b.txt\r\n"),
    ]


def test_v3_relative_times_give_the_same_timeline_as_v2() -> None:
    v3 = parse_asciicast(V3)
    assert (v3.version, v3.width, v3.height) == (3, 100, 30)
    assert v3.events == parse_asciicast(V2).events


def test_imported_recording_is_a_valid_demo() -> None:
    demo = import_asciicast(V3)
    assert demo.kind == "recording" and demo.title == "ls demo"
    assert demo.recording.duration == 2.0
    assert validate_demo(demo) == []
    again, problems = parse_demo(dump_demo(demo))
    assert problems == [] and again == demo


@pytest.mark.parametrize("source", [V2, V3], ids=["v2", "v3"])
def test_round_trip_through_v2_export(source: str) -> None:
    cast = parse_asciicast(source)
    exported = export_asciicast(cast.events, width=cast.width, height=cast.height, title=cast.title)
    again = parse_asciicast(exported)
    assert again.events == cast.events
    assert (again.version, again.width, again.height, again.title) == (2, 100, 30, "ls demo")
    if source is V2:
        # Without resize events (we drop them) the text itself comes back.
        kept = [line for line in V2.splitlines() if '"r"' not in line]
        assert exported.splitlines() == kept


def test_export_of_run_output_chunks() -> None:
    chunks = [(0.0, "hello\n"), Output(t=0.5, stream="stderr", data="oops\n"), (1.25, "bye")]
    text = export_asciicast(chunks, timestamp=1700000000)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"version": 2, "width": 80, "height": 24, "timestamp": 1700000000}
    assert lines[1:] == [[0.0, "o", "hello\r\n"], [0.5, "o", "oops\r\n"], [1.25, "o", "bye"]]
    raw = export_asciicast(chunks, crlf=False)
    assert [e.data for e in parse_asciicast(raw).events] == ["hello\n", "oops\n", "bye"]


def test_export_refuses_out_of_order_events() -> None:
    with pytest.raises(ValueError, match="out of time order"):
        export_asciicast([(1.0, "a"), (0.5, "b")])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty asciicast"),
        ('{"version": 1}\n', "line 1: not an asciicast v2 or v3 header"),
        ('{"version": 2}\nnope\n', "line 2: not JSON"),
        ('{"version": 2}\n[1, "o"]\n', "line 2: an event is [time, code, data]"),
        ('{"version": 2}\n[2, "o", "a"]\n[1, "o", "b"]\n', "line 3: time 1 is before"),
        ('{"version": 3}\n[-1, "o", "a"]\n', "line 2: negative time"),
    ],
)
def test_bad_asciicasts(text: str, message: str) -> None:
    with pytest.raises(AsciicastError) as caught:
        parse_asciicast(text)
    assert message in str(caught.value)
