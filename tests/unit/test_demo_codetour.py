"""CodeTour import: a .tour and its workspace become a valid walkthrough demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demos.codetour import TourError, import_tour
from demos.format import dump_demo, highlight_range, parse_demo, validate_demo

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "codetour"
TOUR = FIXTURE / "getting-started.tour"


def test_import_tour_gives_a_valid_walkthrough() -> None:
    demo = import_tour(TOUR.read_bytes(), FIXTURE, name=TOUR.name)
    assert validate_demo(demo, TOUR.name) == []
    assert demo.title == "Getting started"
    assert demo.description == "A short tour of the greeter."
    assert set(demo.files) == {"src/greet.py", "main.py"}
    assert demo.files["main.py"] == (FIXTURE / "main.py").read_text()
    steps = demo.steps
    assert [s.id for s in steps] == [
        "introduction",
        "step-2",
        "formatting",
        "entry-point",
        "step-5",
    ]
    assert steps[0].narration.startswith("Welcome!") and steps[0].highlights == []
    assert steps[1].title == "src/greet.py:1"
    assert steps[4].narration == "The folder `src`."


def test_line_selection_and_pattern_become_highlights() -> None:
    demo = import_tour(TOUR.read_text(), FIXTURE)
    greet = demo.files["src/greet.py"]
    line_hl = demo.steps[1].highlights[0]
    start, end = highlight_range(greet, line_hl)
    assert greet[start:end] == "def greet(name):"
    sel = demo.steps[2].highlights[0]
    start, end = highlight_range(greet, sel)
    assert greet[start:end] == 'f"Hello, {name}!"'
    pat = demo.steps[3].highlights[0]
    assert pat.pattern == r"^greet\(" and pat.start is None
    main = demo.files["main.py"]
    start, _ = highlight_range(main, pat)
    assert main[start:].startswith('greet("world")')


def test_imported_demo_saves_and_loads_again() -> None:
    demo = import_tour(json.loads(TOUR.read_text()), FIXTURE)
    again, problems = parse_demo(dump_demo(demo), "getting-started.demo.json")
    assert problems == [] and again == demo


def test_a_stale_line_is_caught_by_validation(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("one line\n")
    tour = {"title": "t", "steps": [{"file": "a.py", "line": 40, "description": "gone"}]}
    demo = import_tour(json.dumps(tour), tmp_path, name="t.tour")
    assert [str(p) for p in validate_demo(demo, "t.tour")] == [
        't.tour: steps[0] (id "step-1"): highlights[0].start: '
        "line 40 is past the end of the file (2 lines)"
    ]


def test_duplicate_titles_get_unique_ids(tmp_path: Path) -> None:
    tour = {"title": "t", "steps": [{"title": "Same", "description": ""}] * 3}
    demo = import_tour(json.dumps(tour), tmp_path)
    assert [s.id for s in demo.steps] == ["same", "same-2", "same-3"]


@pytest.mark.parametrize(
    ("tour", "message"),
    [
        ({"steps": []}, "not a CodeTour tour"),
        ({"title": "t", "steps": [{"file": "missing.py", "description": ""}]}, "cannot read"),
        ({"title": "t", "steps": [{"file": "../etc/passwd", "description": ""}]}, "steps[0]: file"),
    ],
)
def test_bad_tours(tmp_path: Path, tour: dict, message: str) -> None:
    with pytest.raises(TourError, match=r"^bad\.tour: ") as caught:
        import_tour(json.dumps(tour), tmp_path, name="bad.tour")
    assert message in str(caught.value)
