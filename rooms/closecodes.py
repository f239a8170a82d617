"""WebSocket close codes the server sends; docs/protocol.md lists them for clients.

y-websocket's WebsocketProvider (3.x) stops reconnecting on 4400-4499, like
@y/hub's codes; every other code makes it reconnect with back-off.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    #: Server shutting down or the room was unloaded: reconnect (to another node).
    GOING_AWAY = 1001
    #: A text frame: the protocol is binary only. Do not reconnect blindly: fix the client.
    UNSUPPORTED_DATA = 1003
    #: A frame over the configured maximum message size (aiohttp closes with it).
    MESSAGE_TOO_BIG = 1009
    #: A bug of ours; reconnecting is safe.
    INTERNAL_ERROR = 1011
    #: Slow consumer, room full or server at its room limit: reconnect later.
    TRY_AGAIN_LATER = 1013
    #: A malformed frame: bad varint, unknown message type, invalid update or
    #: awareness state. Permanent: the same client would send it again.
    MALFORMED = 4400
    #: The token expired during the session: sign in again, then reconnect.
    TOKEN_EXPIRED = 4401
    #: The person's access to the room was withdrawn while connected.
    ACCESS_REVOKED = 4403
    #: Over the per-connection message or byte rate.
    RATE_LIMITED = 4429
