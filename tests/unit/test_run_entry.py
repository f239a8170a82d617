"""Which file a room run starts: decided by the language specs, not a list of the server's."""

from __future__ import annotations

import pytest

from executor import LanguageSpec
from server.runs import RunRefused, choose_entry

LANGS = {
    "python": LanguageSpec(name="python", entry="main.py", run=("python3",), extensions=(".py",)),
    "go": LanguageSpec(name="go", entry="main.go", run=("go", "run"), extensions=(".go",)),
}


def test_a_default_entry_wins_then_the_first_runnable_file_by_name():
    assert choose_entry({"util.py": "", "main.py": ""}, None, LANGS) == ("main.py", "python")
    assert choose_entry({"b.py": "", "a.py": "", "notes.md": ""}, None, LANGS) == ("a.py", "python")


def test_a_language_added_as_a_spec_is_runnable_in_rooms():
    assert choose_entry({"main.go": ""}, None, LANGS) == ("main.go", "go")


def test_a_named_entry_must_exist_and_be_runnable():
    assert choose_entry({"a.py": "", "b.py": ""}, "b.py", LANGS) == ("b.py", "python")
    for files, entry in (
        ({"a.py": ""}, "missing.py"),
        ({"a.txt": ""}, "a.txt"),
        ({"a.txt": ""}, None),
    ):
        with pytest.raises(RunRefused):
            choose_entry(files, entry, LANGS)
