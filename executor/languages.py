"""Language specs: one small JSON file per language (``executor/languages/*.json``).

A spec names the image (optional; the executor's default otherwise), the
default entry file, the command that runs it, the environment it runs in, and
how to run and read the tests of a graded run. Adding a language is adding a
file here (or in ``ExecutorConfig.languages_dir``); the pool does not change.

Placeholders in commands and environment values:

- ``{entry}``: the entry file (relative to the workspace);
- ``{tests}``: as a whole argument, expands to the test files, one argument each;
- ``{report}``: the file the test runner writes its report to;
- ``{workdir}``: the workspace directory (``/work``).

Example (``python.json``)::

    {"name": "python", "aliases": ["py"], "entry": "main.py", "extensions": [".py"],
     "run": ["python3", "{entry}"], "env": {"PYTHONUNBUFFERED": "1"},
     "test": {"command": ["python3", "-m", "pytest", "--junitxml={report}", "{tests}"],
              "report": "junit", "env": {"PYTHONPATH": "{workdir}"}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .grading import REPORT_FORMATS

BUILTIN_DIR = Path(__file__).resolve().parent / "languages"
WORKDIR = "/work"


class LanguageSpecError(ValueError):
    """A language spec file that cannot be used; says which file and why."""


@dataclass(frozen=True, slots=True)
class TestSpec:
    command: tuple[str, ...]
    #: How to read the report: one of ``grading.REPORT_FORMATS`` ("junit", "tap").
    report: str
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    name: str
    #: The file run when a job names none.
    entry: str
    run: tuple[str, ...]
    #: None: the executor's image (``ExecutorConfig.image``).
    image: str | None = None
    aliases: tuple[str, ...] = ()
    #: Used to pick the entry when the default is absent and exactly one file matches.
    extensions: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    test: TestSpec | None = None
    source: str = ""


def _strings(value: Any, what: str, source: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LanguageSpecError(f"{source}: {what} must be a list of strings")
    if not value and not allow_empty:
        raise LanguageSpecError(f"{source}: {what} must not be empty")
    return tuple(value)


def _env(value: Any, what: str, source: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
        for k, v in value.items()
    ):
        raise LanguageSpecError(f"{source}: {what} must map variable names to strings")
    return MappingProxyType(dict(value))


def parse_spec(data: Any, source: str = "<spec>") -> LanguageSpec:
    """A ``LanguageSpec`` from the decoded JSON of one spec file; raises ``LanguageSpecError``."""
    if not isinstance(data, dict):
        raise LanguageSpecError(f"{source}: a language spec is a JSON object")
    known = {"name", "aliases", "entry", "extensions", "run", "env", "test", "image", "comment"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise LanguageSpecError(f"{source}: unknown keys {unknown} (known: {sorted(known)})")
    name = data.get("name")
    if not isinstance(name, str) or not name or not name.replace("-", "").isalnum():
        raise LanguageSpecError(f"{source}: 'name' must be a short word like 'python'")
    entry = data.get("entry")
    if not isinstance(entry, str) or not entry or entry.startswith("/") or ".." in entry.split("/"):
        raise LanguageSpecError(f"{source}: 'entry' must be a relative file name like 'main.py'")
    run = _strings(data.get("run"), "'run'", source)
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image):
        raise LanguageSpecError(f"{source}: 'image' must be an image name or null")
    test = None
    if data.get("test") is not None:
        t = data["test"]
        if not isinstance(t, dict):
            raise LanguageSpecError(f"{source}: 'test' must be an object")
        report = t.get("report")
        if report not in REPORT_FORMATS:
            raise LanguageSpecError(
                f"{source}: test.report must be one of {sorted(REPORT_FORMATS)}, not {report!r}"
            )
        command = _strings(t.get("command"), "test.command", source)
        if "{tests}" not in command:
            raise LanguageSpecError(f"{source}: test.command must contain the argument '{{tests}}'")
        if not any("{report}" in arg for arg in command):
            raise LanguageSpecError(f"{source}: test.command must write its report to '{{report}}'")
        test = TestSpec(command=command, report=report, env=_env(t.get("env"), "test.env", source))
    aliases = _strings(data.get("aliases", []), "'aliases'", source, allow_empty=True)
    extensions = _strings(data.get("extensions", []), "'extensions'", source, allow_empty=True)
    return LanguageSpec(
        name=name.lower(),
        entry=entry,
        run=run,
        image=image,
        aliases=tuple(a.lower() for a in aliases),
        extensions=extensions,
        env=_env(data.get("env"), "'env'", source),
        test=test,
        source=source,
    )


def load_spec(path: Path) -> LanguageSpec:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LanguageSpecError(f"{path}: cannot read the language spec: {exc}") from exc
    return parse_spec(data, str(path))


def load_languages(extra_dir: Path | None = None) -> dict[str, LanguageSpec]:
    """The built-in specs, then those of ``extra_dir`` (which may replace a built-in one)."""
    specs: dict[str, LanguageSpec] = {}
    dirs = [BUILTIN_DIR] + ([Path(extra_dir)] if extra_dir is not None else [])
    for folder in dirs:
        if folder is not BUILTIN_DIR and not folder.is_dir():
            raise LanguageSpecError(f"{folder}: the languages folder does not exist")
        for path in sorted(folder.glob("*.json")):
            spec = load_spec(path)
            specs[spec.name] = spec
    return specs


def find_language(specs: Mapping[str, LanguageSpec], name: str) -> LanguageSpec | None:
    key = name.strip().lower()
    if key in specs:
        return specs[key]
    for spec in specs.values():
        if key in spec.aliases:
            return spec
    return None


def expand(args: tuple[str, ...], *, entry: str, tests: list[str], report: str) -> list[str]:
    """A command with its placeholders filled in; ``{tests}`` alone expands to many arguments."""
    out: list[str] = []
    for arg in args:
        if arg == "{tests}":
            out.extend(tests)
            continue
        out.append(fill(arg, entry=entry, report=report))
    return out


def fill(text: str, *, entry: str = "", report: str = "") -> str:
    for key, value in (("{entry}", entry), ("{report}", report), ("{workdir}", WORKDIR)):
        text = text.replace(key, value)
    return text


__all__ = [
    "LanguageSpec",
    "LanguageSpecError",
    "TestSpec",
    "expand",
    "fill",
    "find_language",
    "load_languages",
    "parse_spec",
]
