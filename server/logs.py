"""Structured logs: one JSON object per line, with the event's context fields."""

from __future__ import annotations

import logging
import sys
import time

import msgspec

# Attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        # aiohttp's access logger repeats the request line in a dozen extras: keep the line.
        extras = () if record.name == "aiohttp.access" else record.__dict__.items()
        for key, value in extras:
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(event).decode()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per HTTP request: keep it, in the same format.
    logging.getLogger("aiohttp.access").setLevel(level.upper())
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every command it runs
