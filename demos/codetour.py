"""Import CodeTour ``.tour`` files as walkthrough demos.

CodeTour (the VS Code extension) is the most common way instructors already
write step-by-step code walkthroughs, so importing them saves rewriting. A tour
is ``{"title", "description"?, "steps": [{"file"?, "directory"?, "line"?,
"selection"?: {"start": {"line", "character"}, "end": ...}, "pattern"?,
"title"?, "description"}]}``; lines and characters are 1-based, as in ours.

A tour only points into a repository, it does not contain the code, so the
files it names are read from a workspace folder and become the demo's
starting files. Each step's pattern, selection or line (in CodeTour's order of
preference) becomes a highlight; steps without a file are narration only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from .format import FORMAT, VERSION, Demo, Highlight, Position, Step, check_path


class _TourPosition(msgspec.Struct):
    line: int
    character: int = 1


class _TourSelection(msgspec.Struct):
    start: _TourPosition
    end: _TourPosition


class _TourStep(msgspec.Struct):
    description: str = ""
    title: str | None = None
    file: str | None = None
    directory: str | None = None
    line: int | None = None
    selection: _TourSelection | None = None
    pattern: str | None = None


class _Tour(msgspec.Struct):
    title: str
    steps: list[_TourStep]
    description: str = ""


class TourError(ValueError):
    """A tour that cannot be imported; the message names the tour and the step."""


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:60].strip("-")


def _step_ids(steps: list[_TourStep]) -> list[str]:
    """Readable unique ids from the step titles (``step-3`` when there is none)."""
    ids: list[str] = []
    used: set[str] = set()
    for index, step in enumerate(steps, start=1):
        base = _slug(step.title or "") or f"step-{index}"
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}-{n}", n + 1
        used.add(candidate)
        ids.append(candidate)
    return ids


def _highlight(step: _TourStep, path: str) -> Highlight:
    if step.pattern:
        return Highlight(file=path, pattern=step.pattern)
    if step.selection is not None:
        sel = step.selection
        return Highlight(
            file=path,
            start=Position(line=sel.start.line, column=max(sel.start.character, 1)),
            end=Position(line=sel.end.line, column=max(sel.end.character, 1)),
        )
    if step.line is not None:
        return Highlight(file=path, start=Position(line=step.line))
    # A file without a position: highlight its first line so the file is shown.
    return Highlight(file=path, start=Position(line=1))


def import_tour(
    data: bytes | str | dict[str, Any], workspace: str | Path, name: str = "tour"
) -> Demo:
    """A walkthrough demo from a tour, with the files it names read from ``workspace``.

    The result is not validated here (a tour's line may point past a file that
    changed since the tour was written); call ``validate_demo`` on it to find out.
    """
    try:
        raw = msgspec.json.decode(data) if isinstance(data, bytes | str) else data
        tour = msgspec.convert(raw, _Tour)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TourError(f"{name}: not a CodeTour tour: {exc}") from exc
    root = Path(workspace)
    files: dict[str, str] = {}
    steps: list[Step] = []
    for index, (step, step_id) in enumerate(zip(tour.steps, _step_ids(tour.steps), strict=True)):
        highlights: list[Highlight] = []
        narration = step.description
        if step.file:
            path = step.file.replace("\\", "/").removeprefix("./")
            why = check_path(path)
            if why is not None:
                raise TourError(f"{name}: steps[{index}]: file: {why}")
            if path not in files:
                try:
                    files[path] = (root / path).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise TourError(
                        f"{name}: steps[{index}]: file: cannot read {path!r} from {root}: {exc}"
                    ) from exc
            highlights.append(_highlight(step, path))
        elif step.directory and not narration:
            narration = f"The folder `{step.directory}`."
        title = step.title or (f"{step.file}:{step.line}" if step.file and step.line else "")
        steps.append(
            Step(
                id=step_id,
                title=title or step.file or f"Step {index + 1}",
                narration=narration,
                highlights=highlights,
            )
        )
    return Demo(
        format=FORMAT,
        version=VERSION,
        title=tour.title,
        description=tour.description,
        files=files,
        steps=steps,
    )
