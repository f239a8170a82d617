"""The course format, version 1: a course folder of YAML definitions and real files.

A course is a folder with ``course.yaml`` at its top::

    format: opencode-live/course     # checked first, with version
    version: 1                       # the format's version, not the course's
    id: py101
    title: Python 101
    description: optional
    revision: 3                      # the author's own number for the content
    modules:
      - modules/basics.yaml          # a module file (path in the course folder)
      - id: loops                    # or a module written inline
        title: Loops
        lessons: [...]

A module has ``id``, ``title``, ``description`` and ``lessons``; a lesson has
``id``, ``title``, ``kind`` (reading, exercise or demo), a ``body`` in Markdown
(or ``body_file``), ``demo`` (a demo id, for kind demo) and ``exercises`` (for
kind exercise). An exercise has ``id``, ``title``, ``instructions`` (or
``instructions_file``), ``language``, ``points``, and ``starter``, ``tests`` and
an optional ``solution``: each a folder of the course whose files (recursively,
dot-files and ``__pycache__`` left out) become the workspace files, or a
mapping ``workspace path: file in the course folder``.

Why the files are real files and not text in the YAML: authors run the
starter and the tests with their own tools before class. Why every path is
relative to the course folder, whichever file names it: a path means the same
thing wherever it is written, and none may leave the folder (no absolute
paths, no ``..``, no symbolic link out of it).

Ids are lowercase words (``[a-z0-9][a-z0-9_-]*``) made global by prefixing:
module ``py101.loops``, lesson ``py101.loops.intro``, exercise
``py101.loops.sum-list``. Exercise ids are unique within their module, not
their lesson, so moving an exercise to another lesson of the module keeps its
id, and with it everyone's submissions.

Checking collects every problem of every file and names each as
``file:line: field: message``. The format and version are checked before
anything else, so that a file from a newer release is refused with one clear
message instead of a pile of field errors.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .coursefile import Fields, Problem, YamlFile, describe, join, line_of, read_yaml, scalar

FORMAT = "opencode-live/course"
VERSION = 1
COURSE_FILE = "course.yaml"
KINDS = ("reading", "exercise", "demo")

#: One part of an id; the database checks the same pattern (migration 0006).
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SLUG_HINT = "lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 64"
#: A demo id, as the demo library takes it (migration 0004).
DEMO_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: Per exercise file: workspaces are for source code, not data sets.
MAX_FILE_BYTES = 1024 * 1024
#: Per exercise, starter + tests (the executor takes at most 500 files per run).
MAX_FILES = 200
MAX_POINTS = 100_000

_COURSE_FIELDS = ("format", "version", "id", "title", "description", "revision", "modules")
_MODULE_FIELDS = ("id", "title", "description", "lessons")
_LESSON_FIELDS = ("id", "title", "kind", "body", "body_file", "demo", "exercises")
_EXERCISE_FIELDS = (
    "id",
    "title",
    "instructions",
    "instructions_file",
    "language",
    "points",
    "starter",
    "tests",
    "solution",
)
_SKIPPED_PARTS = ("__pycache__", "node_modules")


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    slug: str
    position: int
    title: str
    instructions: str
    language: str
    points: int
    #: Workspace path -> text: what a student starts from.
    starter: dict[str, str]
    #: Workspace path -> text: the tests that grade a submission.
    tests: dict[str, str]
    solution: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Lesson:
    id: str
    slug: str
    position: int
    title: str
    kind: str
    body: str = ""
    demo_id: str | None = None
    exercises: tuple[Exercise, ...] = ()


@dataclass(frozen=True, slots=True)
class Module:
    id: str
    slug: str
    position: int
    title: str
    description: str = ""
    lessons: tuple[Lesson, ...] = ()


@dataclass(frozen=True, slots=True)
class Course:
    id: str
    title: str
    description: str
    #: The author's number for this content (``revision``), stored as courses.version.
    revision: int
    modules: tuple[Module, ...]
    #: The folder the course was read from, as given and resolved (stored as courses.source).
    root: Path = field(default=Path("."), compare=False)
    source: str = field(default="", compare=False)

    def lessons(self) -> Iterator[Lesson]:
        for module in self.modules:
            yield from module.lessons

    def exercises(self) -> Iterator[Exercise]:
        for lesson in self.lessons():
            yield from lesson.exercises


class CourseError(ValueError):
    """A course that does not validate; ``problems`` holds every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def unsafe_path(path: str) -> str | None:
    """Why ``path`` cannot name something in the course folder or a workspace, or None."""
    if not path:
        return "empty path"
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        return f'"{path}" must be a relative path with "/" separators'
    if any(part in ("", ".", "..") for part in path.rstrip("/").split("/")):
        return f'"{path}" has an empty, "." or ".." part'
    return None


def course_folder(path: Path | str) -> Path:
    """The course folder for ``path``: the folder itself, or the folder of its course.yaml."""
    path = Path(path)
    return path.parent if path.name == COURSE_FILE and not path.is_dir() else path


def check_course(
    path: Path | str, *, languages: Collection[str] | None = None
) -> tuple[Course | None, list[Problem]]:
    """Read and check the course at ``path`` (its folder or course.yaml).

    Returns the course and no problems, or None and every problem found.
    ``languages``: the language names exercises may use (the executor's, given
    by the caller because ``progress`` does not depend on ``executor``); None
    skips that check.
    """
    reader = _Reader(course_folder(path), languages)
    course = reader.course()
    if reader.problems:
        return None, reader.problems
    return course, []


def read_course(path: Path | str, *, languages: Collection[str] | None = None) -> Course:
    """The course at ``path``; raises :class:`CourseError` naming every problem."""
    course, problems = check_course(path, languages=languages)
    if course is None:
        raise CourseError(problems)
    return course


class _Reader:
    """One pass over a course folder, collecting problems as it goes."""

    def __init__(self, root: Path, languages: Collection[str] | None) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.languages = None if languages is None else sorted(set(languages))
        self.problems: list[Problem] = []

    def name(self, relative: str) -> str:
        """How a file of the course is named in problems: under the folder as given."""
        return str(self.root / relative)

    # --- the course ---------------------------------------------------------------------------

    def course(self) -> Course | None:
        file, node = read_yaml(self.root / COURSE_FILE, self.name(COURSE_FILE), self.problems)
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            file.mapping(node, "", _COURSE_FIELDS)
            return None
        if not self._header(file, node):
            return None
        fields = Fields(file, node, "", _COURSE_FIELDS)
        course_id = fields.text("id", pattern=SLUG, hint=SLUG_HINT)
        title = fields.text("title")
        description = fields.text("description", required=False) or ""
        revision = fields.integer("revision", required=False, default=1, minimum=0)
        items = fields.sequence("modules")
        modules: list[Module] = []
        if items is not None:
            if not items:
                fields.add("modules", "a course needs at least one module")
            seen: dict[str, tuple[str, yaml.Node]] = {}
            for index, item in enumerate(items):
                module = self._module_item(file, item, index, course_id or "?", seen)
                if module is not None:
                    modules.append(module)
        if course_id is None or title is None or revision is None:
            return None
        return Course(
            course_id, title, description, revision, tuple(modules), self.root, str(self.real_root)
        )

    def _header(self, file: YamlFile, node: yaml.MappingNode) -> bool:
        """format and version first: a newer file gets one clear message, not many wrong ones.

        The fields are read on the side and only problems of these two kept:
        an unknown field may well be a field of the newer version.
        """
        side: list[Problem] = []
        fields = Fields(YamlFile(file.name, side), node, "", _COURSE_FIELDS)
        fmt = fields.text("format")
        if fmt is not None and fmt != FORMAT:
            fields.add("format", f'"{fmt}" is not a course; expected "{FORMAT}"')
        version = fields.integer("version", minimum=1)
        if version is not None and version > VERSION:
            fields.add(
                "version",
                f"format version {version} is newer than this opencode-live reads "
                f"(version {VERSION}); upgrade opencode-live to load this course",
            )
        header = [p for p in side if p.field in ("format", "version")]
        self.problems.extend(header)
        return not header

    def _module_item(
        self,
        file: YamlFile,
        item: yaml.Node,
        index: int,
        course_id: str,
        seen: dict[str, tuple[str, yaml.Node]],
    ) -> Module | None:
        """``modules[i]``: a module file's path, or a module inline."""
        where = join("modules", index)
        if isinstance(item, yaml.ScalarNode) and isinstance(scalar(item), str):
            relative = self._course_path(file, item, where, item.value, want="file")
            if relative is None:
                return None
            module_file, node = read_yaml(self.root / relative, self.name(relative), self.problems)
            if node is None:
                return None
            return self._module(module_file, node, "", index, course_id, seen)
        return self._module(file, item, where, index, course_id, seen)

    def _module(
        self,
        file: YamlFile,
        node: yaml.Node,
        where: str,
        position: int,
        course_id: str,
        seen: dict[str, tuple[str, yaml.Node]],
    ) -> Module | None:
        fields = file.mapping(node, where, _MODULE_FIELDS)
        if fields is None:
            return None
        slug = fields.text("id", pattern=SLUG, hint=SLUG_HINT)
        if slug is not None and not _unique(fields, "id", slug, seen, "module"):
            slug = None
        title = fields.text("title")
        description = fields.text("description", required=False) or ""
        module_id = f"{course_id}.{slug}"
        lessons: list[Lesson] = []
        items = fields.sequence("lessons")
        if items is not None:
            if not items:
                fields.add("lessons", "a module needs at least one lesson")
            lesson_ids: dict[str, tuple[str, yaml.Node]] = {}
            exercise_ids: dict[str, tuple[str, yaml.Node]] = {}
            for index, item in enumerate(items):
                lesson = self._lesson(
                    file, item, join(fields.path("lessons"), index), index, module_id,
                    lesson_ids, exercise_ids,
                )  # fmt: skip
                if lesson is not None:
                    lessons.append(lesson)
        if slug is None or title is None:
            return None
        return Module(module_id, slug, position, title, description, tuple(lessons))

    # --- lessons and exercises ----------------------------------------------------------------

    def _lesson(
        self,
        file: YamlFile,
        node: yaml.Node,
        where: str,
        position: int,
        module_id: str,
        seen: dict[str, tuple[str, yaml.Node]],
        exercise_ids: dict[str, tuple[str, yaml.Node]],
    ) -> Lesson | None:
        fields = file.mapping(node, where, _LESSON_FIELDS)
        if fields is None:
            return None
        slug = fields.text("id", pattern=SLUG, hint=SLUG_HINT)
        if slug is not None and not _unique(fields, "id", slug, seen, "lesson"):
            slug = None
        title = fields.text("title")
        kind = fields.choice("kind", KINDS)
        body = self._text_or_file(file, fields, "body", "body_file")
        if kind == "reading" and body == "":
            fields.missing("body")
        demo_id = fields.text("demo", required=kind == "demo", pattern=DEMO_ID, hint="a demo id")
        exercises: list[Exercise] = []
        items = fields.sequence("exercises", required=kind == "exercise")
        if kind is not None and kind != "demo" and "demo" in fields.nodes:
            fields.add("demo", 'only lessons of kind "demo" name a demo')
        if items is not None and kind is not None and kind != "exercise":
            fields.add("exercises", 'only lessons of kind "exercise" have exercises')
        elif items is not None:
            if not items and kind == "exercise":
                fields.add("exercises", "an exercise lesson needs at least one exercise")
            for index, item in enumerate(items):
                exercise = self._exercise(
                    file, item, join(fields.path("exercises"), index), index, module_id,
                    exercise_ids,
                )  # fmt: skip
                if exercise is not None:
                    exercises.append(exercise)
        if slug is None or title is None or kind is None or body is None:
            return None
        return Lesson(
            f"{module_id}.{slug}", slug, position, title, kind, body,
            demo_id if kind == "demo" else None, tuple(exercises),
        )  # fmt: skip

    def _exercise(
        self,
        file: YamlFile,
        node: yaml.Node,
        where: str,
        position: int,
        module_id: str,
        seen: dict[str, tuple[str, yaml.Node]],
    ) -> Exercise | None:
        fields = file.mapping(node, where, _EXERCISE_FIELDS)
        if fields is None:
            return None
        slug = fields.text("id", pattern=SLUG, hint=SLUG_HINT)
        if slug is not None and not _unique(
            fields, "id", slug, seen, "exercise", scope=" in this module"
        ):
            slug = None
        title = fields.text("title")
        instructions = self._text_or_file(file, fields, "instructions", "instructions_file")
        language = fields.text("language")
        if language is not None and self.languages is not None:
            if language not in self.languages:
                fields.add(
                    "language",
                    f'"{language}" is not a language of the executor '
                    f"(one of: {', '.join(self.languages)})",
                )
                language = None
        points = fields.integer("points", minimum=0, maximum=MAX_POINTS)
        starter = self._files(file, fields, "starter")
        tests = self._files(file, fields, "tests")
        solution = self._files(file, fields, "solution", required=False)
        if starter is not None and tests is not None:
            _overlap(fields, "tests", tests, starter, "a starter file")
            if len(starter) + len(tests) > MAX_FILES:
                fields.add("tests", f"starter and tests have more than {MAX_FILES} files")
        if solution is not None and tests is not None:
            _overlap(fields, "solution", solution, tests, "a test file")
        if (
            slug is None
            or title is None
            or instructions is None
            or language is None
            or points is None
            or starter is None
            or tests is None
            or ("solution" in fields.nodes and solution is None)
        ):
            return None
        return Exercise(
            f"{module_id}.{slug}", slug, position, title, instructions, language, points,
            starter, tests, solution,
        )  # fmt: skip

    # --- files of the course folder -----------------------------------------------------------

    def _text_or_file(
        self, file: YamlFile, fields: Fields, inline: str, from_file: str
    ) -> str | None:
        """Markdown given inline or as a file of the course (not both); "" when neither."""
        text = fields.text(inline, required=False)
        if from_file not in fields.nodes:
            return text or ""
        relative = fields.text(from_file)
        if relative is None:
            return None
        if inline in fields.nodes:
            fields.add(from_file, f"give {inline} or {from_file}, not both")
            return None
        node = fields.nodes[from_file]
        found = self._course_path(file, node, fields.path(from_file), relative, want="file")
        if found is None:
            return None
        return self._read_text(file, node, fields.path(from_file), found)

    def _files(
        self, file: YamlFile, fields: Fields, name: str, *, required: bool = True
    ) -> dict[str, str] | None:
        """starter/tests/solution: a folder of the course, or ``workspace path: course file``."""
        node = fields.nodes.get(name)
        where = fields.path(name)
        if node is None:
            if required:
                fields.missing(name)
            return None
        if isinstance(node, yaml.MappingNode):
            return self._file_map(file, node, where)
        if not isinstance(node, yaml.ScalarNode) or not isinstance(scalar(node), str):
            fields.add(
                name, f"must be a folder of the course or a mapping of files, not {describe(node)}"
            )
            return None
        folder = self._course_path(file, node, where, node.value, want="folder")
        if folder is None:
            return None
        found: dict[str, str] = {}
        ok = True
        for path in sorted((self.root / folder).rglob("*")):
            inner = path.relative_to(self.root / folder).as_posix()
            parts = inner.split("/")
            if (
                any(p.startswith(".") or p in _SKIPPED_PARTS for p in parts)
                or path.suffix == ".pyc"
            ):
                continue
            if path.is_dir():
                continue
            relative = f"{folder.rstrip('/')}/{inner}"
            if not self._inside(file, node, where, relative):
                ok = False
                continue
            text = self._read_text(file, node, where, relative)
            if text is None:
                ok = False
                continue
            found[inner] = text
        if ok and not found:
            fields.add(name, f"no files in {self.name(folder)}")
            return None
        return found if ok else None

    def _file_map(
        self, file: YamlFile, node: yaml.MappingNode, where: str
    ) -> dict[str, str] | None:
        found: dict[str, str] = {}
        ok = True
        if not node.value:
            file.add(node, where, "names no files")
            return None
        for key, value in node.value:
            workspace = key.value if isinstance(key, yaml.ScalarNode) else ""
            why = unsafe_path(workspace)
            if why is not None:
                file.add(key, where, f"workspace path: {why}")
                ok = False
                continue
            entry = join(where, workspace)
            if workspace in found:
                file.add(key, entry, "duplicate file")
                ok = False
                continue
            if not isinstance(value, yaml.ScalarNode) or not isinstance(scalar(value), str):
                file.add(value, entry, f"must be a file of the course, not {describe(value)}")
                ok = False
                continue
            relative = self._course_path(file, value, entry, value.value, want="file")
            text = None if relative is None else self._read_text(file, value, entry, relative)
            if text is None:
                ok = False
                continue
            found[workspace] = text
        return found if ok else None

    def _course_path(
        self, file: YamlFile, node: yaml.Node, where: str, relative: str, *, want: str
    ) -> str | None:
        """``relative`` if it safely names an existing file or folder of the course."""
        why = unsafe_path(relative)
        if why is not None:
            file.add(node, where, why)
            return None
        relative = relative.rstrip("/")
        path = self.root / relative
        if not self._inside(file, node, where, relative):
            return None
        if want == "file" and not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "no such file"
            file.add(node, where, f"{what}: {self.name(relative)}")
            return None
        if want == "folder" and not path.is_dir():
            what = "is a file, not a folder" if path.is_file() else "no such folder"
            file.add(node, where, f"{what}: {self.name(relative)}")
            return None
        return relative

    def _inside(self, file: YamlFile, node: yaml.Node, where: str, relative: str) -> bool:
        """False (and a problem) for a path that a symbolic link leads out of the course."""
        try:
            real = (self.root / relative).resolve()
        except (OSError, RuntimeError) as exc:
            file.add(node, where, f"cannot resolve {self.name(relative)}: {exc}")
            return False
        if real != self.real_root and not real.is_relative_to(self.real_root):
            file.add(node, where, f"{self.name(relative)} leads outside the course folder")
            return False
        return True

    def _read_text(self, file: YamlFile, node: yaml.Node, where: str, relative: str) -> str | None:
        path = self.root / relative
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                file.add(
                    node, where, f"{self.name(relative)} is larger than {MAX_FILE_BYTES} bytes"
                )
                return None
            return path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            file.add(node, where, f"{self.name(relative)} is not UTF-8 text")
        except OSError as exc:
            file.add(node, where, f"cannot read {self.name(relative)}: {exc.strerror or exc}")
        return None


def _unique(
    fields: Fields,
    name: str,
    value: str,
    seen: dict[str, tuple[str, yaml.Node]],
    what: str,
    scope: str = "",
) -> bool:
    """Record ``value`` as used; False (and a problem naming the first use) if it was."""
    node = fields.nodes[name]
    if value in seen:
        first_file, first = seen[value]
        fields.add(
            name,
            f'duplicate {what} id "{value}"{scope} (first used at {first_file}:{line_of(first)})',
        )
        return False
    seen[value] = (fields.file.name, node)
    return True


def _overlap(
    fields: Fields, name: str, files: dict[str, str], other: dict[str, str], what: str
) -> None:
    for path in sorted(set(files) & set(other)):
        fields.add(name, f'"{path}" is also {what}; a run cannot have both')


__all__ = [
    "COURSE_FILE",
    "FORMAT",
    "KINDS",
    "VERSION",
    "Course",
    "CourseError",
    "Exercise",
    "Lesson",
    "Module",
    "Problem",
    "check_course",
    "course_folder",
    "read_course",
    "unsafe_path",
]
