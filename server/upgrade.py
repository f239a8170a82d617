"""The WebSocket handshake for a room, checked by the ``websockets`` library."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol

from .auth import token_from

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


@dataclass(frozen=True, slots=True)
class RoomUpgrade:
    room_id: str
    #: The client opted in to the room extension channel (``?ext=1``).
    extension: bool
    #: The 101 response, written once the gate lets the client in.
    response: bytes
    token: str | None


def accept_room(request: Request) -> RoomUpgrade | None:
    """The room, the client's token and the 101 response for a valid room upgrade.

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
    return RoomUpgrade(
        room_id,
        extension,
        b"".join(handshake.data_to_send()),
        token_from(url.query, request.headers.raw_items()),
    )


def refusal_response(status: int, message: str) -> bytes:
    """An HTTP error answered instead of the upgrade: JSON naming what was wrong."""
    body = json.dumps({"error": message}).encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if status == 401:
        # RFC 6750: a client learns the scheme and why its token failed.
        description = json.dumps(message)  # quoted, ASCII only
        head.append(
            f'WWW-Authenticate: Bearer error="invalid_token", error_description={description}'
        )
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
