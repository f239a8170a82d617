"""Reading YAML with line numbers: the generic half of the course format.

Course files are written by people, so a problem must say where it is:
``file:line: field: message``. ``yaml.safe_load`` throws the positions away,
so definitions are read from the *node tree* (``yaml.compose``), whose nodes
keep their marks, and checked field by field. Checking by hand rather than
with msgspec (as ``demos/format.py`` does for JSON) is on purpose: msgspec
stops at the first error of a value and knows no lines, and an author fixing a
course wants every problem of the file at once.

Text fields take the scalar as written (``title: 101`` is the title "101"),
numbers must be YAML integers, and duplicate keys, which PyYAML would silently
resolve to the last one, are reported.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a course: the file, the line (1-based), the field, and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{place}: {self.field}: {self.message}" if self.field else f"{place}: {self.message}"
        )


def line_of(node: yaml.Node | None) -> int | None:
    """The 1-based line a node starts on (PyYAML's marks count from 0)."""
    return None if node is None else node.start_mark.line + 1


def join(prefix: str, name: str | int) -> str:
    """A field path: ``modules[1].lessons[0].title``."""
    if isinstance(name, int):
        return f"{prefix}[{name}]"
    return f"{prefix}.{name}" if prefix else name


def describe(node: yaml.Node) -> str:
    """What a node is, for messages such as 'must be a whole number, not the text "ten"'."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = scalar(node)
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"the boolean {node.value}"
    if isinstance(value, int | float):
        return f"the number {node.value}"
    return f'the text "{node.value}"'


def scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node, as ``yaml.safe_load`` would make it."""
    try:
        # A fresh constructor each time: it caches every node it has built.
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except yaml.YAMLError:
        return node.value


class YamlFile:
    """One file being checked: the name problems show and where they are collected."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems

    def add(self, node: yaml.Node | None, field: str, message: str) -> None:
        self.problems.append(Problem(self.name, line_of(node), field, message))

    def mapping(self, node: yaml.Node, where: str, known: Collection[str]) -> Fields | None:
        """The fields of a mapping node, or None (and a problem) if the node is not one."""
        if not isinstance(node, yaml.MappingNode):
            self.add(node, where, f"must be a mapping of fields, not {describe(node)}")
            return None
        return Fields(self, node, where, known)


def read_yaml(path: Path, name: str, problems: list[Problem]) -> tuple[YamlFile, yaml.Node | None]:
    """Compose one YAML file into its node tree; None (and a problem) if it cannot be read."""
    file = YamlFile(name, problems)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        file.add(None, "", "is not UTF-8 text")
        return file, None
    except OSError as exc:
        file.add(None, "", f"cannot read: {exc.strerror or exc}")
        return file, None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        problems.append(Problem(name, line, "", f"not valid YAML: {what}"))
        return file, None
    except yaml.YAMLError as exc:
        file.add(None, "", f"not valid YAML: {exc}")
        return file, None
    if node is None:
        file.add(None, "", "the file is empty")
    return file, node


class Fields:
    """The fields of one YAML mapping, checked against those its definition knows.

    Unknown and duplicate keys are reported when the mapping is read; each
    accessor reports a missing required field or a value of the wrong kind and
    returns None, so that the caller carries on and every problem is found.
    """

    def __init__(
        self, file: YamlFile, node: yaml.MappingNode, where: str, known: Collection[str]
    ) -> None:
        self.file = file
        self.node = node
        self.where = where
        #: Value nodes by field name; ``keys`` holds the key nodes, where problems point
        #: (the key's line, even when a list or mapping value starts on the next one).
        self.nodes: dict[str, yaml.Node] = {}
        self.keys: dict[str, yaml.Node] = {}
        keys: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or not isinstance(scalar(key), str):
                file.add(key, where, f"field names are text, not {describe(key)}")
                continue
            name = key.value
            if name in keys:
                file.add(
                    key,
                    join(where, name),
                    f"duplicate field (first given on line {line_of(keys[name])})",
                )
                continue
            keys[name] = key
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                file.add(
                    key,
                    join(where, name),
                    f"unknown field (known: {', '.join(sorted(known))}){hint}",
                )
                continue
            self.nodes[name] = value
            self.keys[name] = key

    def path(self, name: str) -> str:
        return join(self.where, name)

    def add(self, name: str, message: str) -> None:
        """A problem with field ``name``: on its line if given, else on the mapping's."""
        self.file.add(self.keys.get(name, self.node), self.path(name), message)

    def has(self, name: str) -> bool:
        return name in self.nodes and scalar_or_node(self.nodes[name]) is not None

    def missing(self, name: str) -> None:
        self.file.add(self.node, self.path(name), "missing")

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        """A text field: the scalar as written; ``pattern`` must match (``hint`` says how)."""
        node = self.nodes.get(name)
        if node is None or scalar_or_node(node) is None:
            if required and node is None:
                self.missing(name)
            elif required:
                self.add(name, "must not be empty")
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.add(name, f"must be text, not {describe(node)}")
            return None
        value: str = node.value
        if required and not value.strip():
            self.add(name, "must not be empty")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(name, f'"{value}" is not valid{": " + hint if hint else ""}')
            return None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = True,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A whole number (a YAML integer: not ``10.0``, not ``"10"``, not ``true``)."""
        node = self.nodes.get(name)
        if node is None:
            if required:
                self.missing(name)
            return default
        value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(name, f"must be a whole number, not {describe(node)}")
            return None
        if minimum is not None and value < minimum:
            self.add(name, f"must be at least {minimum}, not {value}")
            return None
        if maximum is not None and value > maximum:
            self.add(name, f"must be at most {maximum}, not {value}")
            return None
        return value

    def choice(self, name: str, options: Collection[str], *, required: bool = True) -> str | None:
        value = self.text(name, required=required)
        if value is not None and value not in options:
            self.add(name, f'"{value}" is not one of {", ".join(options)}')
            return None
        return value

    def sequence(self, name: str, *, required: bool = True) -> list[yaml.Node] | None:
        """A list field's item nodes (an empty list is a list)."""
        node = self.nodes.get(name)
        if node is None:
            if required:
                self.missing(name)
            return None
        if not isinstance(node, yaml.SequenceNode):
            self.add(name, f"must be a list, not {describe(node)}")
            return None
        return list(node.value)


def scalar_or_node(node: yaml.Node) -> Any:
    """A scalar's value, or the node itself for a mapping or list (never None then)."""
    return scalar(node) if isinstance(node, yaml.ScalarNode) else node
