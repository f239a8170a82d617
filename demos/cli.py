"""``opencode-live demo validate``: check demo files before class, not when they fail to load."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .format import SUFFIX, parse_demo


def _expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The demo files named or found under the folders, and the usage errors."""
    files: list[Path] = []
    errors: list[str] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
            if not found:
                errors.append(f"no *{SUFFIX} files in {name}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"no such file or folder: {name}")
    return files, errors


def validate_paths(paths: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print ``ok: FILE`` or one line per problem; 0 all valid, 1 any invalid, 2 usage error.

    Problems name the path as given (relative to where the command ran) so they
    can be clicked in an editor's terminal.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    files, errors = _expand(paths)
    for message in errors:
        print(f"opencode-live demo validate: {message}", file=err)
    if errors:
        return 2
    invalid = False
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}", file=out)
            invalid = True
            continue
        _, problems = parse_demo(data, str(path))
        if problems:
            invalid = True
            for problem in problems:
                print(problem, file=out)
        else:
            print(f"ok: {path}", file=out)
    return 1 if invalid else 0
