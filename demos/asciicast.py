"""asciicast (asciinema) import as a recording timeline, and export of run output as v2.

Why: terminal sessions recorded with asciinema can be replayed in a room next
to the code, and a run's output can be saved in a format every asciinema
player understands.

* v2: a header line ``{"version": 2, "width", "height", ...}`` then one event
  per line, ``[time, code, data]`` with *absolute* times in seconds.
* v3: a header ``{"version": 3, "term": {"cols", "rows"}, ...}``, events
  ``[interval, code, data]`` with times *relative* to the previous event, and
  ``#`` comment lines.

Codes: ``o`` output and ``i`` input become ``output`` events (stdout and
stdin), ``m`` markers become ``marker`` events; ``r`` (resize) and ``x``
(exit) have no place in our timeline and are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .format import FORMAT, VERSION, Demo, Marker, Output, Recording

#: Rounding of times: asciinema writes microseconds; more digits are float noise.
_DIGITS = 6


class AsciicastError(ValueError):
    """An unreadable asciicast; the message names the line."""


@dataclass(frozen=True, slots=True)
class Asciicast:
    """What an import gives: the header and the events as our timeline."""

    version: int
    width: int
    height: int
    title: str | None
    events: list[Output | Marker]


def parse_asciicast(text: str) -> Asciicast:
    """Parse an asciicast v2 or v3 document into timeline events with absolute times."""
    lines = text.splitlines()
    numbered = [
        (n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")
    ]
    if not numbered:
        raise AsciicastError("empty asciicast")
    n, first = numbered[0]
    try:
        header = json.loads(first)
    except json.JSONDecodeError as exc:
        raise AsciicastError(f"line {n}: header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("version") not in (2, 3):
        raise AsciicastError(f"line {n}: not an asciicast v2 or v3 header")
    version = header["version"]
    if version == 2:
        width, height = header.get("width", 80), header.get("height", 24)
    else:
        term = header.get("term") or {}
        width, height = term.get("cols", 80), term.get("rows", 24)
    events: list[Output | Marker] = []
    now = 0.0
    for n, line in numbered[1:]:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AsciicastError(f"line {n}: not JSON: {exc}") from exc
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not isinstance(item[0], int | float)
            or isinstance(item[0], bool)
            or not isinstance(item[1], str)
            or not isinstance(item[2], str)
        ):
            raise AsciicastError(f"line {n}: an event is [time, code, data]")
        time, code, data = item
        if time < 0:
            raise AsciicastError(f"line {n}: negative time {time}")
        if version == 2:
            if time < now:
                raise AsciicastError(f"line {n}: time {time} is before the previous {now}")
            now = float(time)
        else:
            now += time
        t = round(now, _DIGITS)
        if code == "o":
            events.append(Output(t=t, stream="stdout", data=data))
        elif code == "i":
            events.append(Output(t=t, stream="stdin", data=data))
        elif code == "m":
            events.append(Marker(t=t, label=data))
    return Asciicast(version, int(width), int(height), header.get("title"), events)


def import_asciicast(text: str, title: str | None = None) -> Demo:
    """A recording demo (no files) whose timeline is the terminal session."""
    cast = parse_asciicast(text)
    duration = cast.events[-1].t if cast.events else 0.0
    return Demo(
        format=FORMAT,
        version=VERSION,
        title=title or cast.title or "Terminal recording",
        recording=Recording(events=list(cast.events), duration=duration),
    )


def _crlf(data: str) -> str:
    """Bare ``\\n`` as ``\\r\\n``: piped output has no pty to do it; a player needs it."""
    return data.replace("\r\n", "\n").replace("\n", "\r\n")


def export_asciicast(
    events: Iterable[Output | Marker | tuple[float, str]],
    *,
    width: int = 80,
    height: int = 24,
    title: str | None = None,
    timestamp: int | None = None,
    crlf: bool = True,
) -> str:
    """A run's output as asciicast v2 text.

    ``events`` are output chunks (``Output`` or ``(seconds, text)``) and markers,
    in time order. stdout and stderr both become ``o`` (a terminal shows them
    interleaved), stdin becomes ``i``. With ``crlf`` bare newlines become CRLF.
    """
    header: dict[str, object] = {"version": 2, "width": width, "height": height}
    if timestamp is not None:
        header["timestamp"] = timestamp
    if title is not None:
        header["title"] = title
    out = [json.dumps(header, ensure_ascii=False)]
    last = 0.0
    for event in events:
        if isinstance(event, tuple):
            event = Output(t=float(event[0]), stream="stdout", data=event[1])
        if event.t < last:
            raise ValueError(f"events out of time order: {event.t} after {last}")
        last = event.t
        t = round(event.t, _DIGITS)
        if isinstance(event, Marker):
            line = [t, "m", event.label]
        else:
            code = "i" if event.stream == "stdin" else "o"
            line = [t, code, _crlf(event.data) if crlf and code == "o" else event.data]
        out.append(json.dumps(line, ensure_ascii=False))
    return "\n".join(out) + "\n"
