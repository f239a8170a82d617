"""Values and frames between the Python test runner and the student's process.

Stdlib only: this file runs inside the sandbox, in both processes. A frame is
4 bytes of big-endian length and a UTF-8 JSON document. Values are JSON with a
few tagged objects so that what a test receives has the type the student's
code returned (a tuple stays a tuple, a set a set, a dict keeps int keys); any
other object cannot cross and is an error the test sees. Nothing is ever
unpickled or evaluated: the runner treats every frame from the student's side
as untrusted data.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")
#: The largest frame either side accepts (a test's arguments or a result).
MAX_FRAME = 16 * 1024 * 1024
MAX_DEPTH = 200


class WireError(Exception):
    """A value that cannot cross, or a broken frame."""


def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able data; raises ``WireError`` for what cannot cross."""
    if depth > MAX_DEPTH:
        raise WireError("the value is nested too deeply")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"$float": repr(float(value))}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, depth + 1) for v in value]}
    if isinstance(value, frozenset):
        return {"$frozenset": [encode(v, depth + 1) for v in value]}
    if isinstance(value, set):
        return {"$set": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, depth + 1) for k, v in value.items()}
        return {"$dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, complex):
        return {"$complex": [encode(value.real), encode(value.imag)]}
    raise WireError(
        f"a {type(value).__name__} cannot be passed between the tests and the code "
        "(use None, bool, int, float, str, bytes, list, tuple, dict, set)"
    )


def decode(data: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("the value is nested too deeply")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v, depth + 1) for v in data]
    if not isinstance(data, dict):
        raise WireError(f"unexpected {type(data).__name__} on the wire")
    if len(data) == 1:
        ((tag, inner),) = data.items()
        if tag.startswith("$"):
            return _tagged(tag, inner, depth)
    return {k: decode(v, depth + 1) for k, v in data.items()}


def _tagged(tag: str, inner: Any, depth: int) -> Any:
    if tag == "$float" and inner in ("nan", "inf", "-inf"):
        return float(inner)
    if tag in ("$tuple", "$set", "$frozenset", "$dict", "$complex") and not isinstance(inner, list):
        raise WireError(f"bad {tag} on the wire")
    if tag == "$tuple":
        return tuple(decode(v, depth + 1) for v in inner)
    if tag == "$set":
        return {decode(v, depth + 1) for v in inner}
    if tag == "$frozenset":
        return frozenset(decode(v, depth + 1) for v in inner)
    if tag == "$dict":
        out = {}
        for pair in inner:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("bad $dict on the wire")
            out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
        return out
    if tag == "$bytes" and isinstance(inner, str):
        return base64.b64decode(inner.encode("ascii"), validate=True)
    if tag == "$complex" and len(inner) == 2:
        return complex(float(inner[0]), float(inner[1]))
    raise WireError(f"unknown tag {tag[:20]!r} on the wire")


def dumps(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    data = body.encode("utf-8", "surrogatepass")
    if len(data) > MAX_FRAME:
        raise WireError(f"a message of {len(data)} bytes is larger than {MAX_FRAME}")
    return HEADER.pack(len(data)) + data


def write_frame(fd: int, message: dict[str, Any]) -> None:
    view = memoryview(dumps(message))
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


def read_exact(fd: int, size: int) -> bytes:
    """``size`` bytes from a blocking ``fd``; ``WireError`` at end of file."""
    chunks: list[bytes] = []
    left = size
    while left:
        try:
            data = os.read(fd, min(left, 1 << 20))
        except InterruptedError:
            continue
        if not data:
            raise WireError("the other side closed the channel")
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def parse_frame(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise WireError(f"an unreadable message ({exc})") from None
    if not isinstance(message, dict):
        raise WireError("a message must be a JSON object")
    return message


def read_frame(fd: int) -> dict[str, Any]:
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > MAX_FRAME:
        raise WireError(f"a message of {size} bytes is larger than {MAX_FRAME}")
    return parse_frame(read_exact(fd, size))
