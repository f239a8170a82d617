"""The course format: the sample course parses; bad definitions are named by file, line and field.

Every bad course here is a real folder written to ``tmp_path``; expected lines
are found by searching the YAML text for a marker, so the tests say *which*
line a problem belongs to without counting by hand.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from progress.course import (
    Course,
    CourseError,
    Problem,
    check_course,
    read_course,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "courses" / "python-101"
LANGUAGES = ("javascript", "python")

COURSE = """\
format: opencode-live/course
version: 1
id: demo
title: A course
revision: 2
modules:
  - modules/one.yaml
  - id: two
    title: Module two
    lessons:
      - id: read
        title: Read this
        kind: reading
        body: Some text.
"""

MODULE = """\
id: one
title: Module one
lessons:
  - id: intro
    title: Intro
    kind: reading
    body_file: lessons/intro.md
  - id: practice
    title: Practice
    kind: exercise
    exercises:
      - id: add
        title: Add
        instructions: Write add(a, b).
        language: python
        points: 10
        starter: exercises/add/starter
        tests: exercises/add/tests
"""

FILES = {
    "lessons/intro.md": "# Intro\n",
    "exercises/add/starter/main.py": "def add(a, b):\n    return 0\n",
    "exercises/add/tests/test_main.py": "from main import add\n",
}


def write_course(
    root: Path,
    course: str = COURSE,
    module: str | None = MODULE,
    files: dict[str, str] | None = None,
) -> Path:
    """A course folder: course.yaml, modules/one.yaml and the files it references."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "course.yaml").write_text(course)
    if module is not None:
        (root / "modules").mkdir(exist_ok=True)
        (root / "modules" / "one.yaml").write_text(module)
    for relative, text in (FILES if files is None else files).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def line(text: str, marker: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of ``text`` containing ``marker``."""
    found = [i for i, content in enumerate(text.splitlines(), 1) if marker in content]
    assert len(found) >= nth, f"{marker!r} not in the text"
    return found[nth - 1]


def problems_of(root: Path) -> list[Problem]:
    course, problems = check_course(root, languages=LANGUAGES)
    assert course is None, "expected the course to be refused"
    assert problems
    return problems


def where(problems: list[Problem]) -> set[tuple[str, int | None, str]]:
    """(file name, line, field) of every problem: what a test asserts most of the time."""
    return {(Path(p.file).name, p.line, p.field) for p in problems}


def find(problems: list[Problem], field: str) -> Problem:
    matches = [p for p in problems if p.field == field]
    assert len(matches) == 1, f"{field}: {problems}"
    return matches[0]


# --- good courses ----------------------------------------------------------------------------


def test_sample_course_parses() -> None:
    course = read_course(SAMPLE, languages=LANGUAGES)
    assert course.id == "py101"
    assert [m.id for m in course.modules] == ["py101.basics", "py101.loops", "py101.strings"]
    assert [m.position for m in course.modules] == [0, 1, 2]
    exercises = {e.id: e for e in course.exercises()}
    assert len(exercises) >= 4
    assert {e.language for e in exercises.values()} == {"python", "javascript"}
    sum_list = exercises["py101.loops.sum-list"]
    assert sum_list.points == 20
    assert set(sum_list.starter) == {"main.py"}
    assert set(sum_list.tests) == {"test_main.py"}
    assert "def sum_list" in sum_list.starter["main.py"]
    assert sum_list.solution is not None and "for number in numbers" in sum_list.solution["main.py"]
    lessons = {lesson.id: lesson for lesson in course.lessons()}
    assert lessons["py101.basics.welcome"].body.startswith("# Welcome")
    assert lessons["py101.basics.loops-demo"].demo_id == "python-loops"
    # The instructions of count-words come from a file of the course.
    assert "count_words" in exercises["py101.strings.count-words"].instructions


def test_course_yaml_path_is_accepted_as_well_as_the_folder() -> None:
    assert read_course(SAMPLE / "course.yaml") == read_course(SAMPLE)


def test_small_course_with_module_file_and_inline_module(tmp_path: Path) -> None:
    course = read_course(write_course(tmp_path / "c"), languages=LANGUAGES)
    assert isinstance(course, Course)
    assert course.revision == 2
    assert [lesson.id for lesson in course.lessons()] == [
        "demo.one.intro",
        "demo.one.practice",
        "demo.two.read",
    ]
    (exercise,) = course.exercises()
    assert exercise.id == "demo.one.add"
    assert exercise.starter == {"main.py": "def add(a, b):\n    return 0\n"}
    assert exercise.solution is None


def test_folders_leave_out_dot_files_and_caches(tmp_path: Path) -> None:
    files = {
        **FILES,
        "exercises/add/starter/.hidden": "x",
        "exercises/add/starter/__pycache__/main.cpython-311.pyc": "x",
        "exercises/add/starter/lib/util.py": "X = 1\n",
    }
    course = read_course(write_course(tmp_path / "c", files=files))
    (exercise,) = course.exercises()
    assert set(exercise.starter) == {"main.py", "lib/util.py"}


def test_file_mapping_names_workspace_paths(tmp_path: Path) -> None:
    module = MODULE.replace(
        "starter: exercises/add/starter",
        "starter:\n          app/main.py: exercises/add/starter/main.py",
    )
    course = read_course(write_course(tmp_path / "c", module=module))
    (exercise,) = course.exercises()
    assert set(exercise.starter) == {"app/main.py"}


def test_language_is_not_checked_without_a_list(tmp_path: Path) -> None:
    module = MODULE.replace("language: python", "language: cobol")
    read_course(write_course(tmp_path / "c", module=module))
    with pytest.raises(CourseError):
        read_course(write_course(tmp_path / "d", module=module), languages=LANGUAGES)


# --- the format and its version, first ------------------------------------------------------


def test_newer_format_version_is_one_clear_message(tmp_path: Path) -> None:
    # Everything else is wrong too; only the version is reported.
    course = "format: opencode-live/course\nversion: 2\nid: NOT VALID\nsomething: else\n"
    problems = problems_of(write_course(tmp_path / "c", course=course))
    assert len(problems) == 1
    (problem,) = problems
    assert (Path(problem.file).name, problem.line, problem.field) == ("course.yaml", 2, "version")
    assert "format version 2 is newer" in problem.message
    assert "upgrade opencode-live" in problem.message


def test_wrong_format_and_missing_version(tmp_path: Path) -> None:
    course = "format: opencode-live/demo\nid: x\ntitle: T\nmodules: []\n"
    problems = problems_of(write_course(tmp_path / "c", course=course))
    assert where(problems) == {("course.yaml", 1, "format"), ("course.yaml", 1, "version")}
    assert 'expected "opencode-live/course"' in find(problems, "format").message
    assert find(problems, "version").message == "missing"


def test_version_that_is_not_a_number(tmp_path: Path) -> None:
    course = COURSE.replace("version: 1", 'version: "one"')
    problems = problems_of(write_course(tmp_path / "c", course=course))
    assert where(problems) == {("course.yaml", 2, "version")}
    assert 'not the text "one"' in problems[0].message


# --- bad definitions, each named by file, line and field ---------------------------------------


def test_missing_title_names_the_mapping_line(tmp_path: Path) -> None:
    module = MODULE.replace("    title: Intro\n", "")
    problems = problems_of(write_course(tmp_path / "c", module=module))
    problem = find(problems, "lessons[0].title")
    assert problem.file == str(tmp_path / "c" / "modules" / "one.yaml")
    assert problem.line == line(module, "- id: intro")
    assert problem.message == "missing"
    assert str(problem) == f"{problem.file}:{problem.line}: lessons[0].title: missing"


def test_missing_course_title_in_course_yaml(tmp_path: Path) -> None:
    course = COURSE.replace("title: A course\n", "")
    problems = problems_of(write_course(tmp_path / "c", course=course))
    assert where(problems) == {("course.yaml", 1, "title")}


def test_unknown_field_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    course = COURSE.replace("        title: Read this", "        titel: Read this")
    problems = problems_of(write_course(tmp_path / "c", course=course))
    assert where(problems) == {
        ("course.yaml", line(course, "titel:"), "modules[1].lessons[0].titel"),
        ("course.yaml", line(course, "- id: read"), "modules[1].lessons[0].title"),
    }
    unknown = find(problems, "modules[1].lessons[0].titel")
    assert unknown.message.startswith("unknown field")
    assert 'did you mean "title"?' in unknown.message


def test_duplicate_ids(tmp_path: Path) -> None:
    module = MODULE.replace("  - id: practice", "  - id: intro")
    course = COURSE.replace("  - id: two", "  - id: one")
    problems = problems_of(write_course(tmp_path / "c", course=course, module=module))
    lesson = find(problems, "lessons[1].id")
    assert Path(lesson.file).name == "one.yaml"
    assert lesson.line == line(module, "- id: intro", 2)
    assert f"first used at {tmp_path / 'c' / 'modules' / 'one.yaml'}:4" in lesson.message
    module_dup = find(problems, "modules[1].id")
    assert Path(module_dup.file).name == "course.yaml"
    assert module_dup.line == line(course, "- id: one")
    assert 'duplicate module id "one"' in module_dup.message


def test_exercise_ids_are_unique_within_the_module(tmp_path: Path) -> None:
    module = MODULE + textwrap.indent(
        textwrap.dedent(
            """\
            - id: more
              title: More practice
              kind: exercise
              exercises:
                - id: add
                  title: Add again
                  language: python
                  points: 5
                  starter: exercises/add/starter
                  tests: exercises/add/tests
            """
        ),
        "  ",
    )
    problems = problems_of(write_course(tmp_path / "c", module=module))
    problem = find(problems, "lessons[2].exercises[0].id")
    assert problem.line == line(module, "- id: add", 2)
    assert 'duplicate exercise id "add" in this module' in problem.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "must be at least 0, not -5"),
        ("ten", 'must be a whole number, not the text "ten"'),
        ("1.5", "must be a whole number, not the number 1.5"),
        ("true", "must be a whole number, not the boolean true"),
        ('"10"', 'must be a whole number, not the text "10"'),
    ],
)
def test_points_must_be_a_whole_number_not_negative(
    tmp_path: Path, value: str, message: str
) -> None:
    module = MODULE.replace("points: 10", f"points: {value}")
    problems = problems_of(write_course(tmp_path / "c", module=module))
    assert [(p.line, p.field, p.message) for p in problems] == [
        (line(module, "points:"), "lessons[1].exercises[0].points", message)
    ]


def test_missing_referenced_files_and_folders(tmp_path: Path) -> None:
    files = {"exercises/add/starter/main.py": "x = 1\n"}  # no tests folder, no intro.md
    root = write_course(tmp_path / "c", files=files)
    problems = problems_of(root)
    assert where(problems) == {
        ("one.yaml", line(MODULE, "body_file:"), "lessons[0].body_file"),
        ("one.yaml", line(MODULE, "tests:"), "lessons[1].exercises[0].tests"),
    }
    body = find(problems, "lessons[0].body_file")
    assert body.message == f"no such file: {root / 'lessons' / 'intro.md'}"
    tests = find(problems, "lessons[1].exercises[0].tests")
    assert tests.message == f"no such folder: {root / 'exercises' / 'add' / 'tests'}"


def test_missing_module_file(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", module=None)
    problems = problems_of(root)
    assert [(Path(p.file).name, p.line, p.field) for p in problems] == [
        ("course.yaml", line(COURSE, "modules/one.yaml"), "modules[0]")
    ]
    assert problems[0].message == f"no such file: {root / 'modules' / 'one.yaml'}"


def test_language_not_known_to_the_executor(tmp_path: Path) -> None:
    module = MODULE.replace("language: python", "language: cobol")
    problems = problems_of(write_course(tmp_path / "c", module=module))
    problem = find(problems, "lessons[1].exercises[0].language")
    assert problem.line == line(module, "language:")
    assert (
        problem.message == '"cobol" is not a language of the executor (one of: javascript, python)'
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc", '"/etc" must be a relative path with "/" separators'),
        ("../outside", '"../outside" has an empty, "." or ".." part'),
        ("exercises/../../outside", "has an empty"),
        ("C:/tests", "must be a relative path"),
    ],
)
def test_unsafe_paths(tmp_path: Path, path: str, message: str) -> None:
    module = MODULE.replace("tests: exercises/add/tests", f"tests: {path}")
    problems = problems_of(write_course(tmp_path / "c", module=module))
    problem = find(problems, "lessons[1].exercises[0].tests")
    assert problem.line == line(module, "tests:")
    assert message in problem.message


def test_symbolic_link_out_of_the_course(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "test_x.py").write_text("x\n")
    root = write_course(tmp_path / "c", files={**FILES, "lessons/intro.md": "x"})
    (root / "exercises" / "add" / "tests" / "linked.py").symlink_to(outside / "test_x.py")
    os.symlink(outside, root / "shortcut")
    module = MODULE.replace("body_file: lessons/intro.md", "body_file: shortcut/test_x.py")
    (root / "modules" / "one.yaml").write_text(module)
    problems = problems_of(root)
    assert where(problems) == {
        ("one.yaml", line(module, "body_file:"), "lessons[0].body_file"),
        ("one.yaml", line(module, "tests:"), "lessons[1].exercises[0].tests"),
    }
    assert all("leads outside the course folder" in p.message for p in problems)


def test_workspace_paths_in_a_mapping_are_checked(tmp_path: Path) -> None:
    module = MODULE.replace(
        "starter: exercises/add/starter",
        "starter:\n          ../main.py: exercises/add/starter/main.py",
    )
    problems = problems_of(write_course(tmp_path / "c", module=module))
    problem = find(problems, "lessons[1].exercises[0].starter")
    assert problem.line == line(module, "../main.py")
    assert "workspace path" in problem.message


def test_starter_and_tests_must_not_share_a_path(tmp_path: Path) -> None:
    files = {**FILES, "exercises/add/tests/main.py": "x\n"}
    problems = problems_of(write_course(tmp_path / "c", files=files))
    problem = find(problems, "lessons[1].exercises[0].tests")
    assert '"main.py" is also a starter file' in problem.message


def test_kinds_and_what_they_need(tmp_path: Path) -> None:
    course = COURSE.replace("        kind: reading\n        body: Some text.", "        kind: demo")
    module = MODULE.replace("    kind: exercise", "    kind: reading\n    body: Text.").replace(
        "kind: reading\n    body_file", "kind: lecture\n    body_file"
    )
    problems = problems_of(write_course(tmp_path / "c", course=course, module=module))
    assert where(problems) == {
        ("course.yaml", line(course, "- id: read"), "modules[1].lessons[0].demo"),
        ("one.yaml", line(module, "kind: lecture"), "lessons[0].kind"),
        ("one.yaml", line(module, "exercises:"), "lessons[1].exercises"),
    }
    assert find(problems, "lessons[0].kind").message == (
        '"lecture" is not one of reading, exercise, demo'
    )
    assert "only lessons of kind" in find(problems, "lessons[1].exercises").message


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    module = MODULE.replace("points: 10", "points: 10\n        points: 20")
    problems = problems_of(write_course(tmp_path / "c", module=module))
    problem = find(problems, "lessons[1].exercises[0].points")
    assert problem.line == line(module, "points: 20")
    assert problem.message == f"duplicate field (first given on line {line(module, 'points: 10')})"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    module = MODULE.replace("    title: Intro", "    title: [Intro")
    problems = problems_of(write_course(tmp_path / "c", module=module))
    (problem,) = problems
    assert Path(problem.file).name == "one.yaml"
    assert problem.line is not None and problem.line >= line(module, "[Intro")
    assert problem.message.startswith("not valid YAML")


def test_not_utf8_and_empty_folder(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c")
    (root / "lessons" / "intro.md").write_bytes(b"caf\xe9\n")
    (root / "exercises" / "add" / "tests" / "test_main.py").unlink()
    problems = problems_of(root)
    assert find(problems, "lessons[0].body_file").message.endswith("intro.md is not UTF-8 text")
    assert find(problems, "lessons[1].exercises[0].tests").message.startswith("no files in ")


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    course = COURSE.replace("id: demo", "id: Demo Course").replace(
        "        body: Some text.", "        body: Some text.\n        colour: red"
    )
    module = (
        MODULE.replace("title: Module one\n", "")
        .replace("points: 10", "points: -1")
        .replace("language: python", "language: ruby")
        .replace("    title: Practice\n", "")
    )
    problems = problems_of(write_course(tmp_path / "c", course=course, module=module))
    assert where(problems) == {
        ("course.yaml", line(course, "id: Demo"), "id"),
        ("course.yaml", line(course, "colour:"), "modules[1].lessons[0].colour"),
        ("one.yaml", 1, "title"),
        ("one.yaml", line(module, "- id: practice"), "lessons[1].title"),
        ("one.yaml", line(module, "language:"), "lessons[1].exercises[0].language"),
        ("one.yaml", line(module, "points:"), "lessons[1].exercises[0].points"),
    }
    # Problems are listed file by file, in the order they occur.
    assert [Path(p.file).name for p in problems] == ["course.yaml"] + ["one.yaml"] * 4 + [
        "course.yaml"
    ]


def test_course_error_lists_every_problem(tmp_path: Path) -> None:
    module = MODULE.replace("points: 10", "points: -1").replace("language: python", "language: x")
    with pytest.raises(CourseError) as caught:
        read_course(write_course(tmp_path / "c", module=module), languages=LANGUAGES)
    assert len(caught.value.problems) == 2
    assert str(caught.value).count("\n") == 1
