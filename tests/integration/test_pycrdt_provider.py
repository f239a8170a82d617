"""pycrdt's own sync Provider, over the websockets library's client, against the server.

A second real Yjs peer implementation besides Node's y-websocket: pycrdt's
``Provider`` speaks the same sync protocol and must converge unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from pycrdt import Doc, Map, Provider, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.integration.test_ws_protocol import server_files
from tests.pyclient import eventually


class WebsocketChannel:
    """pycrdt's Channel protocol over a websockets client connection."""

    def __init__(self, ws: ClientConnection, path: str) -> None:
        self._ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> WebsocketChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self._ws.send(message)

    async def recv(self) -> bytes:
        message = await self._ws.recv()
        assert isinstance(message, bytes)
        return message


@contextlib.asynccontextmanager
async def provided(url: str, doc: Doc, auth: dict[str, str]) -> AsyncIterator[Provider]:
    """A provider on a socket signed in with the ``auth`` headers."""
    async with (
        connect(url, max_size=None, additional_headers=auth) as ws,
        Provider(doc, WebsocketChannel(ws, url)) as p,
    ):
        await asyncio.wait_for(p.synced.wait(), 15)
        yield p


def files_of(doc: Doc) -> dict[str, str]:
    return {k: str(v) for k, v in doc.get("files", type=Map).items()}


async def test_two_pycrdt_providers_converge(server, tokens):
    url = f"{server.ws}/rooms/pycrdt-provider"
    a, b = Doc(), Doc()
    async with provided(url, a, tokens.auth()), provided(url, b, tokens.auth()):
        a.get("files", type=Map)["a.py"] = Text("print('from a')\n")
        b.get("files", type=Map)["b.py"] = Text("print('from b')\n")
        expected = {"a.py": "print('from a')\n", "b.py": "print('from b')\n"}
        await eventually(lambda: files_of(a) == expected == files_of(b), what="convergence")
        with a.transaction():
            a.get("files", type=Map)["b.py"].insert(0, "# a was here\n")
        await eventually(lambda: files_of(b)["b.py"].startswith("# a was here\n"))


async def test_pycrdt_provider_receives_a_big_document_in_pieces(server_factory, tokens):
    server = server_factory("--max-message-bytes", "65536", "--send-queue-bytes", "262144")
    url = f"{server.ws}/rooms/pycrdt-big"
    writer = Doc()
    async with provided(url, writer, tokens.auth()):
        files = writer.get("files", type=Map)
        for i in range(30):
            files[f"f{i}.txt"] = Text(f"{i}:" + "y" * 40_000)
        async with aiohttp.ClientSession(headers=tokens.auth()) as session:
            stored = await server_files(
                session, server, "pycrdt-big", until=lambda f: len(f) == 30, timeout=30
            )
        assert stored == files_of(writer)
        # the late joiner's sync is over a megabyte: it arrives in pieces under 64 KiB
        reader = Doc()
        async with provided(url, reader, tokens.auth()):
            assert files_of(reader) == files_of(writer)
