"""The WebSocket handshake for a room, checked by the ``websockets`` library."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol

ROOMS_PREFIX = "/rooms/"
#: Letters, digits, "-", "_" and "." up to 128 characters; "." and ".." alone are refused.
ROOM_ID = re.compile(r"(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,128}\Z")
ROOM_ID_RULE = 'letters, digits, "-", "_" and "." (1 to 128 characters, not "." or "..")'


def parse_head(head: bytes) -> Request | None:
    """The request in a complete HTTP request head, or None when it is not one."""
    handshake = ServerProtocol()
    handshake.receive_data(head)
    events = handshake.events_received()
    if len(events) != 1 or not isinstance(events[0], Request):
        return None
    return events[0]


def request_from(path_qs: str, headers: list[tuple[str, str]]) -> Request:
    return Request(path_qs, Headers(headers))


def accept_room(request: Request) -> tuple[str, bool, bytes] | None:
    """``(room id, extension opt-in, 101 response bytes)`` for a valid room upgrade.

    None for anything else: aiohttp then answers with the JSON error that says
    what was wrong (bad room id, not a WebSocket, broken handshake).
    """
    url = urlsplit(request.path)
    if not url.path.startswith(ROOMS_PREFIX):
        return None
    room_id = url.path[len(ROOMS_PREFIX) :]
    if not ROOM_ID.match(room_id):
        return None
    handshake = ServerProtocol()
    response = handshake.accept(request)
    if response.status_code != 101:
        return None
    handshake.send_response(response)
    extension = parse_qs(url.query).get("ext") == ["1"]
    return room_id, extension, b"".join(handshake.data_to_send())
