"""Rate limits at the real server: 429 with Retry-After, and 4429 for a flooding socket."""

from __future__ import annotations

import aiohttp
from pycrdt import Text

from crdt import awareness_message, encode_awareness_update
from rooms import CloseCode
from tests.pyclient import YClient, eventually


async def test_api_requests_over_the_hourly_limit_get_429_with_retry_after(server_factory, tokens):
    server = server_factory("--api-requests-per-hour", "3")
    async with aiohttp.ClientSession(headers=tokens.auth(user_id="ada")) as ada:
        for _ in range(3):
            async with ada.get(f"{server.http}/api/me") as resp:
                assert resp.status == 200
        async with ada.get(f"{server.http}/api/rooms") as resp:
            assert resp.status == 429
            retry = int(resp.headers["Retry-After"])
            # one request per 1200 s comes back: the next one is due in at most that
            assert 0 < retry <= 1200
            assert "3 API requests per hour" in (await resp.json())["error"]
    # the limit is per user: someone else is not affected
    async with aiohttp.ClientSession(headers=tokens.auth(user_id="bob")) as bob:
        async with bob.get(f"{server.http}/api/me") as resp:
            assert resp.status == 200
    # health and metrics are not API requests
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{server.http}/metrics") as resp:
            assert 'opencode_live_rate_limited_total{limit="API requests"} 1.0' in await resp.text()


async def test_a_socket_over_the_message_rate_is_closed_with_4429(server_factory, tokens):
    server = server_factory("--socket-messages-per-second", "5", "--socket-message-burst", "20")
    async with aiohttp.ClientSession(headers=tokens.auth()) as s:
        calm = await YClient(s, f"{server.ws}/rooms/flood").connect()
        await calm.wait_synced()
        flood = await YClient(s, f"{server.ws}/rooms/flood").connect()
        await flood.wait_synced()
        for clock in range(1, 60):
            update = encode_awareness_update([(flood.client_id, clock, '{"x":1}')])
            await flood.send(awareness_message(update))
        assert await flood.wait_closed() == CloseCode.RATE_LIMITED
        assert "messages per second" in flood.close_reason
        # the room and the calm client live on
        calm.edit(lambda f: f.__setitem__("ok.py", Text("fine")))
        late = await YClient(s, f"{server.ws}/rooms/flood").connect()
        await late.wait_synced()
        await eventually(lambda: late.text("ok.py") == "fine", what="room still works")
        assert not calm.closed.is_set()
        await calm.close()
        await late.close()


async def test_a_socket_over_the_byte_rate_is_closed_with_4429(server_factory, tokens):
    server = server_factory(
        "--max-message-bytes",
        "65536",
        "--send-queue-bytes",
        "262144",
        "--socket-bytes-per-second",
        "1000",
    )
    async with aiohttp.ClientSession(headers=tokens.auth()) as s:
        writer = await YClient(s, f"{server.ws}/rooms/bytes").connect()
        await writer.wait_synced()
        # the burst is twice the message limit (128 KiB): three 60 KB files exceed it
        for i in range(3):
            writer.edit(lambda f, i=i: f.__setitem__(f"big{i}.txt", Text("z" * 60_000)))
        assert await writer.wait_closed() == CloseCode.RATE_LIMITED
        assert "bytes per second" in writer.close_reason
        reader = await YClient(s, f"{server.ws}/rooms/bytes").connect()
        await reader.wait_synced()
        # what was within the budget is kept whole; what was over it never arrived
        await eventually(lambda: len(reader.file_contents()) >= 2, what="two files stored")
        assert sorted(reader.file_contents()) == ["big0.txt", "big1.txt"]
        assert all(len(v) == 60_000 for v in reader.file_contents().values())
        await reader.close()
