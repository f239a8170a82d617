"""Server-to-client WebSocket frames built once and written to every peer.

A server's frames are not masked (RFC 6455, 5.1), so one binary frame is the
same bytes for every recipient: the room frames a message once and hands the
very same ``bytes`` object to each connection's transport.
"""

from __future__ import annotations

import struct

_OPCODE_BINARY = 0x82  # FIN + binary
_LEN2 = struct.Struct("!BBH")
_LEN8 = struct.Struct("!BBQ")


def binary_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        return bytes((_OPCODE_BINARY, length)) + payload
    if length < 65536:
        return _LEN2.pack(_OPCODE_BINARY, 126, length) + payload
    return _LEN8.pack(_OPCODE_BINARY, 127, length) + payload
