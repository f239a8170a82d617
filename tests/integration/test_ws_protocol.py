"""The WebSocket endpoint through pycrdt clients against the real server process."""

from __future__ import annotations

import asyncio
import random
import socket
import urllib.parse

import aiohttp
import msgspec
import pytest
import yarl
from pycrdt import Text

from crdt import MessageKind, awareness_message, encode_awareness_update, parse_frame, sync_update
from rooms import CloseCode
from tests.pyclient import YClient, eventually


@pytest.fixture
async def session(tokens):
    """Signed in as one student, who owns the rooms the test opens."""
    async with aiohttp.ClientSession(headers=tokens.auth()) as s:
        yield s


async def server_files(session, server, room: str, until, timeout: float = 10.0) -> dict:
    """The room's files as the server holds them, once ``until(files)`` holds.

    The server applies an update once it is stored, so its copy follows the
    author's by a commit.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with session.get(f"{server.http}/api/rooms/{room}/files") as resp:
            files = (await resp.json())["files"]
        if until(files) or asyncio.get_running_loop().time() > deadline:
            return files
        await asyncio.sleep(0.02)


async def connected(session, server, room: str, **kw) -> YClient:
    client = await YClient(session, f"{server.ws}/rooms/{room}", **kw).connect()
    await client.wait_synced()
    return client


async def test_on_connect_server_sends_sync_step1_then_known_awareness(server, session):
    first = await connected(session, server, "greet")
    await first.set_awareness({"user": {"name": "José"}})
    await eventually(lambda: first.client_id in first.awareness, what="own awareness echo")

    raw = await session.ws_connect(f"{server.ws}/rooms/greet")
    msg1 = parse_frame(await raw.receive_bytes(timeout=5))
    msg2 = parse_frame(await raw.receive_bytes(timeout=5))
    assert msg1[0].kind is MessageKind.SYNC_STEP1
    assert msg2[0].kind is MessageKind.AWARENESS
    await raw.close()
    await first.close()


async def test_updates_are_echoed_to_sender_and_forwarded_as_the_same_bytes(server, session):
    a = await connected(session, server, "echo")
    b = await connected(session, server, "echo")
    a.received.clear()
    b.received.clear()
    # Send a frame we built ourselves so we know its exact bytes.
    from pycrdt import Doc, Map

    other = Doc()
    other.get("files", type=Map)["x.py"] = Text("print(1)")
    frame = sync_update(other.get_update())
    await a.send(frame)
    await eventually(lambda: frame in a.received and frame in b.received, what="echo and forward")
    assert a.text("x.py") == "print(1)" == b.text("x.py")
    await a.close()
    await b.close()


async def test_several_messages_in_one_frame_are_all_handled(server, session):
    a = await connected(session, server, "multi")
    b = await connected(session, server, "multi")
    from pycrdt import Doc, Map

    other = Doc()
    files = other.get("files", type=Map)
    files["one.py"] = Text("1")
    u1 = other.get_update()
    sv = other.get_state()
    files["two.py"] = Text("2")
    u2 = other.get_update(sv)
    aw = awareness_message(
        encode_awareness_update([(other.client_id, 1, '{"user":{"name":"李雷"}}')])
    )
    await a.send(sync_update(u1) + sync_update(u2) + aw)
    await eventually(
        lambda: b.file_contents() == {"one.py": "1", "two.py": "2"}, what="both updates"
    )
    await eventually(lambda: other.client_id in b.awareness, what="awareness")
    assert b.awareness[other.client_id] == '{"user":{"name":"李雷"}}'
    await a.close()
    await b.close()


async def test_awareness_removed_and_announced_when_socket_closes(server, session):
    a = await connected(session, server, "aw")
    b = await connected(session, server, "aw")
    await a.set_awareness({"user": {"name": "Zoë 👩‍💻"}})
    await eventually(lambda: a.client_id in b.awareness, what="b sees a")
    assert msgspec.json.decode(b.awareness[a.client_id]) == {"user": {"name": "Zoë 👩‍💻"}}
    await a.close()
    await eventually(lambda: a.client_id not in b.awareness, what="removal announced")
    await b.close()


async def test_query_awareness_answers_with_all_states(server, session):
    a = await connected(session, server, "qa")
    await a.set_awareness({"n": 1})
    b = await connected(session, server, "qa")
    await eventually(lambda: a.client_id in b.awareness)
    b.awareness.clear()
    await b.send(b"\x03")
    await eventually(lambda: a.client_id in b.awareness, what="answer to query-awareness")
    await a.close()
    await b.close()


async def test_late_joiner_gets_whole_document_and_rooms_are_isolated(server, session):
    a = await connected(session, server, "room-a")
    other_room = await connected(session, server, "room-b")
    a.edit(lambda f: f.__setitem__("main.py", Text("x = 1\n" * 100)))
    await eventually(lambda: len(a.received) > 0)
    late = await connected(session, server, "room-a")
    await eventually(lambda: late.text("main.py") == "x = 1\n" * 100, what="late joiner sync")
    await asyncio.sleep(0)
    assert other_room.file_contents() == {}
    for c in (a, other_room, late):
        await c.close()


# -- bad input: each gets a documented close; the room, others and the document live on


async def _room_with_watcher(server, session, room: str) -> tuple[YClient, dict[str, str]]:
    watcher = await connected(session, server, room)
    watcher.edit(lambda f: f.__setitem__("keep.py", Text("safe")))
    before = await server_files(session, server, room, until=lambda f: "keep.py" in f)
    assert before == {"keep.py": "safe"}
    return watcher, before


async def _assert_room_unharmed(server, session, room: str, watcher: YClient, before) -> None:
    async with session.get(f"{server.http}/api/rooms/{room}/files") as resp:
        assert (await resp.json())["files"] == before
    assert not watcher.closed.is_set()
    # the room still works for others
    watcher.edit(lambda f: f["keep.py"].__iadd__("!"))
    fresh = await connected(session, server, room)
    await eventually(lambda: fresh.text("keep.py") == "safe!", what="room still syncing")
    await fresh.close()
    async with session.get(f"{server.http}/healthz") as resp:
        assert resp.status == 200


BAD_FRAMES = {
    "random bytes": bytes([7, 200, 13, 99, 250, 1, 2, 3]),
    "truncated varint": b"\x00\x02\xff\xff",
    "length prefix past the end": b"\x00\x02\x40abc",
    "unknown message type": b"\x07\x00",
    "unknown sync type": b"\x00\x09\x00",
    "invalid yjs update": b"\x00\x02\x05\x01\x02\x03\x04\x05",
    "awareness not json": b"\x01" + bytes([9, 1, 5, 1, 5]) + b"{bad:",
    "empty frame": b"",
    "valid update then garbage": sync_update(b"\x00\x00") + b"\x00",
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
async def test_malformed_frame_closes_only_that_client_with_4400(server, session, name):
    room = "bad-" + name.replace(" ", "-")
    watcher, before = await _room_with_watcher(server, session, room)
    bad = await connected(session, server, room)
    await bad.send(BAD_FRAMES[name])
    code = await bad.wait_closed()
    assert code == CloseCode.MALFORMED
    assert "malformed frame" in bad.close_reason
    await _assert_room_unharmed(server, session, room, watcher, before)
    await watcher.close()


async def test_random_garbage_fuzz_never_harms_the_room(server, session):
    room = "fuzz"
    watcher, before = await _room_with_watcher(server, session, room)
    rng = random.Random(1234)
    codes = set()
    for _ in range(30):
        bad = await YClient(session, f"{server.ws}/rooms/{room}").connect(handshake=False)
        await bad.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
        await bad.send(b"\x00\x00\x00")  # a valid step 1 afterwards: must be ignored if closing
        try:
            codes.add(await bad.wait_closed(timeout=3))
        except TimeoutError:
            codes.add("open")  # a random frame may happen to be valid (e.g. query-awareness)
            await bad.close()
    assert codes <= {CloseCode.MALFORMED, "open"}
    await _assert_room_unharmed(server, session, room, watcher, before)
    await watcher.close()


async def test_text_frame_closes_with_1003(server, session):
    watcher, before = await _room_with_watcher(server, session, "text")
    bad = await connected(session, server, "text")
    await bad.ws.send_str("hello")
    assert await bad.wait_closed() == CloseCode.UNSUPPORTED_DATA
    await _assert_room_unharmed(server, session, "text", watcher, before)
    await watcher.close()


async def test_oversize_frame_closes_with_1009(server_factory, session):
    server = server_factory("--max-message-bytes", "65536", "--send-queue-bytes", "262144")
    watcher, before = await _room_with_watcher(server, session, "big")
    bad = await connected(session, server, "big")
    from pycrdt import Doc, Map

    other = Doc()
    other.get("files", type=Map)["huge.txt"] = Text("x" * 70_000)
    await bad.send(sync_update(other.get_update()))
    assert await bad.wait_closed() == CloseCode.MESSAGE_TOO_BIG
    await _assert_room_unharmed(server, session, "big", watcher, before)
    await watcher.close()


@pytest.mark.parametrize("room_id", ["has space", "a" * 129, "..", "semi;colon", "ü"])
async def test_bad_room_id_is_refused_before_upgrade(server, session, room_id):
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await session.ws_connect(f"{server.ws}/rooms/{room_id}")
    assert err.value.status in (400, 404)
    # encoded=True: send "/rooms/.." as written (the client would clean it up to "/")
    quoted = urllib.parse.quote(room_id, safe=".")
    async with session.get(yarl.URL(f"{server.http}/rooms/{quoted}", encoded=True)) as resp:
        assert resp.status in (400, 404)
        if resp.status == 400:
            assert "invalid room id" in (await resp.json())["error"]


async def test_longest_valid_room_id_is_accepted(server, session):
    client = await connected(session, server, "A-z_0.9" + "x" * 121)
    await client.close()


async def test_room_full_closes_with_1013(server_factory, session):
    server = server_factory("--max-connections-per-room", "2")
    a = await connected(session, server, "full")
    b = await connected(session, server, "full")
    c = await YClient(session, f"{server.ws}/rooms/full").connect()
    assert await c.wait_closed() == CloseCode.TRY_AGAIN_LATER
    assert c.close_reason == "room is full"
    other = await connected(session, server, "not-full")
    for x in (a, b, other):
        await x.close()


async def test_room_limit_closes_with_1013(server_factory, session):
    server = server_factory("--max-rooms", "2", "--unload-grace-seconds", "60")
    a = await connected(session, server, "r1")
    b = await connected(session, server, "r2")
    c = await YClient(session, f"{server.ws}/rooms/r3").connect()
    assert await c.wait_closed() == CloseCode.TRY_AGAIN_LATER
    assert "room limit" in c.close_reason
    again = await connected(session, server, "r1")  # an existing room still takes joiners
    for x in (a, b, again):
        await x.close()


async def test_slow_consumer_is_closed_with_1013_and_others_keep_up(server_factory, session):
    server = server_factory(
        "--max-message-bytes",
        "65536",
        "--send-queue-bytes",
        "131072",
        # the writer floods on purpose: its own rate limit is not what is tested here
        "--socket-bytes-per-second",
        "1000000000",
    )
    writer = await connected(session, server, "slow")
    fast = await connected(session, server, "slow")
    # A raw socket that never reads after the handshake: its queue fills up.
    # Its receive buffer is shrunk before connecting so the kernel absorbs little.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    reader, wr = await asyncio.open_connection(sock=sock)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    wr.write(
        (
            f"GET /rooms/slow?token={server.token()} HTTP/1.1\r\nHost: x\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await wr.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    assert b"101" in status
    chunk = "y" * 30_000
    for i in range(400):
        writer.edit(lambda f, i=i: f.__setitem__(f"f{i % 50}.txt", Text(chunk)))
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    await eventually(
        lambda: len(fast.file_contents()) == 50, timeout=20, what="fast client keeps up"
    )
    async with session.get(f"{server.http}/metrics") as resp:
        text = await resp.text()
    assert "opencode_live_slow_consumer_disconnects_total 1.0" in text
    # The slow client, once it reads, finds the close frame with 1013 at the end.
    data = b""
    try:
        while True:
            part = await asyncio.wait_for(reader.read(1 << 20), 10)
            if not part:
                break
            data += part
    except TimeoutError:
        pass
    close_at = data.rfind(b"\x88")
    assert close_at >= 0, "no close frame"
    assert int.from_bytes(data[close_at + 2 : close_at + 4], "big") == CloseCode.TRY_AGAIN_LATER
    wr.close()
    assert not writer.closed.is_set() and not fast.closed.is_set()
    await writer.close()
    await fast.close()


# -- room extension channel


async def test_extension_hello_ping_and_notice(server, session):
    plain = await connected(session, server, "ext")
    ext = await connected(session, server, "ext?ext=1")
    await eventually(lambda: any(m["type"] == "hello" for m in ext.room_messages), what="hello")
    hello = next(m for m in ext.room_messages if m["type"] == "hello")
    assert hello["room"] == "ext" and hello["protocol"] == 1
    assert hello["connections"] == 2 and hello["server_time"] > 0
    await ext.send_room({"type": "ping", "id": 7, "client_time": 123.5})
    await eventually(lambda: any(m["type"] == "pong" for m in ext.room_messages), what="pong")
    pong = next(m for m in ext.room_messages if m["type"] == "pong")
    assert pong["id"] == 7 and pong["client_time"] == 123.5 and pong["server_time"] > 0
    await ext.send_room({"type": "launch-rockets"})
    await eventually(lambda: any(m["type"] == "notice" for m in ext.room_messages), what="notice")
    notice = next(m for m in ext.room_messages if m["type"] == "notice")
    assert notice["level"] == "error" and notice["code"] == "bad-room-message"
    assert "launch-rockets" in notice["text"]
    await ext.send(b"\x64\x03\xc1\xc1\xc1")  # 0xc1 is never valid MessagePack
    await eventually(lambda: sum(m["type"] == "notice" for m in ext.room_messages) == 2)
    assert not ext.closed.is_set()
    # the plain client never saw a room message
    assert all(parse_frame(f)[0].kind is not MessageKind.ROOM for f in plain.received)
    await ext.close()
    await plain.close()


async def test_extension_opt_in_by_hello_message(server, session):
    client = await connected(session, server, "ext-hello")
    assert client.room_messages == []
    await client.send_room({"type": "hello", "name": "Ada"})
    await eventually(lambda: any(m["type"] == "hello" for m in client.room_messages))
    await client.close()


# -- HTTP side


async def test_document_api_reaches_clients_live(server, session):
    client = await connected(session, server, "api")
    async with session.put(
        f"{server.http}/api/rooms/api/files/src/main.py", data="print('hé')\n"
    ) as r:
        assert r.status == 201
    await eventually(
        lambda: client.text("src/main.py") == "print('hé')\n", what="PUT reaches client"
    )
    client.edit(lambda f: f["src/main.py"].__iadd__("# tail\n"))
    await eventually(lambda: "# tail" in (client.text("src/main.py") or ""))

    async def server_text() -> str:
        async with session.get(f"{server.http}/api/rooms/api/files") as resp:
            return (await resp.json())["files"]["src/main.py"]

    for _ in range(100):
        if "# tail" in await server_text():
            break
        await asyncio.sleep(0.02)
    async with session.put(
        f"{server.http}/api/rooms/api/files/src/main.py", data="print('hi')\n# tail\n"
    ) as r:
        assert r.status == 200
    await eventually(lambda: client.text("src/main.py") == "print('hi')\n# tail\n")
    async with session.get(f"{server.http}/api/rooms/api/files/src/main.py") as r:
        assert await r.text() == "print('hi')\n# tail\n"
    async with session.get(f"{server.http}/api/rooms") as r:
        rooms = (await r.json())["rooms"]
    assert {"id": "api", "connections": 1}.items() <= next(
        x for x in rooms if x["id"] == "api"
    ).items()
    async with session.delete(f"{server.http}/api/rooms/api/files/src/main.py") as r:
        assert r.status == 204
    await eventually(lambda: client.text("src/main.py") is None, what="DELETE reaches client")
    async with session.delete(f"{server.http}/api/rooms/api/files/src/main.py") as r:
        assert r.status == 404
        assert "no file" in (await r.json())["error"]
    await client.close()


async def test_a_big_file_upload_is_stored_whole(server, session):
    """A body bigger than one network read is read to its end, not cut at what arrived."""
    client = await connected(session, server, "big-upload")
    text = "".join(f"line {i:07d} ✓\n" for i in range(60_000))  # about 0.9 MB

    async def chunks():  # streamed in pieces, so the server sees it arrive over time
        data = text.encode()
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]
            await asyncio.sleep(0.005)

    async with session.put(f"{server.http}/api/rooms/big-upload/files/big.txt", data=chunks()) as r:
        assert r.status == 201, await r.text()
    async with session.get(f"{server.http}/api/rooms/big-upload/files/big.txt") as r:
        assert await r.text() == text
    await eventually(lambda: client.text("big.txt") == text, what="the whole file reaches clients")
    await client.close()


@pytest.mark.parametrize("path", ["../etc/passwd", "a//b", "/abs", "dir/", "a/./b", "tab\there"])
async def test_document_api_refuses_bad_paths(server, session, path):
    # encoded=True: send the path as written, without the client's dot-segment clean-up
    url = yarl.URL(f"{server.http}/api/rooms/api/files/{path}".replace("\t", "%09"), encoded=True)
    async with session.put(url, data="x") as r:
        assert r.status in (400, 404)
        if r.status == 400:
            assert "invalid file path" in (await r.json())["error"]


async def test_document_api_refuses_non_utf8_and_oversize(server_factory, session):
    server = server_factory("--max-message-bytes", "65536", "--send-queue-bytes", "262144")
    async with session.post(f"{server.http}/api/rooms", json={"id": "api"}) as r:
        assert r.status == 201
    async with session.put(f"{server.http}/api/rooms/api/files/a.bin", data=b"\xff\xfe\x00") as r:
        assert r.status == 400
        assert "UTF-8" in (await r.json())["error"]
    async with session.put(f"{server.http}/api/rooms/api/files/a.txt", data=b"a" * 70_000) as r:
        assert r.status == 413
    async with session.get(f"{server.http}/api/rooms/api/files") as r:
        assert (await r.json())["files"] == {}


async def test_health_ready_and_metrics(server, session):
    client = await connected(session, server, "metrics")
    client.edit(lambda f: f.__setitem__("m.py", Text("1")))
    await eventually(lambda: len(client.received) >= 2)
    async with session.get(f"{server.http}/healthz") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"
    async with session.get(f"{server.http}/readyz") as r:
        assert r.status == 200
    async with session.get(f"{server.http}/metrics") as r:
        text = await r.text()
    for name in (
        "opencode_live_connections 1.0",
        "opencode_live_rooms 1.0",
        'opencode_live_messages_in_total{kind="SYNC_UPDATE"}',
        "opencode_live_bytes_out_total",
        "opencode_live_fanout_seconds_bucket",
    ):
        assert name in text, name
    await client.close()


async def test_room_unloads_after_grace_period(server, session):
    client = await connected(session, server, "grace")
    client.edit(lambda f: f.__setitem__("g.py", Text("1")))
    await eventually(lambda: len(client.received) >= 2)
    await client.close()

    async def listed() -> bool:
        async with session.get(f"{server.http}/api/rooms") as r:
            return any(x["id"] == "grace" and x["loaded"] for x in (await r.json())["rooms"])

    assert await listed()  # still there during the 0.5 s grace
    for _ in range(200):
        if not await listed():
            break
        await asyncio.sleep(0.02)
    assert not await listed()


async def test_sigterm_closes_sockets_with_1001(server_factory, session):
    server = server_factory()
    clients = [await connected(session, server, f"bye{i % 2}") for i in range(4)]
    server.process.send_signal(15)
    for c in clients:
        assert await c.wait_closed(15) == CloseCode.GOING_AWAY
    assert server.process.wait(20) == 0


async def test_big_document_initial_sync_arrives_in_pieces(server_factory, session):
    server = server_factory("--max-message-bytes", "65536", "--send-queue-bytes", "262144")
    writer = await connected(session, server, "huge")
    for i in range(40):
        writer.edit(lambda f, i=i: f.__setitem__(f"f{i}.txt", Text(f"{i}:" + "z" * 50_000)))
    await server_files(session, server, "huge", until=lambda f: len(f) == 40, timeout=30)
    joiner = await YClient(session, f"{server.ws}/rooms/huge").connect()
    await joiner.wait_synced(30)
    assert joiner.file_contents() == writer.file_contents()
    sync_frames = [
        f
        for f in joiner.received
        if parse_frame(f)[0].kind in (MessageKind.SYNC_UPDATE, MessageKind.SYNC_STEP2)
    ]
    assert len(sync_frames) > 10
    assert max(len(f) for f in joiner.received) <= 65536
    await writer.close()
    await joiner.close()


async def test_awareness_not_renewed_is_dropped_and_announced(server_factory, session):
    server = server_factory("--awareness-timeout-seconds", "0.5")
    quiet = await connected(session, server, "stale")
    watcher = await connected(session, server, "stale")
    await quiet.set_awareness({"user": {"name": "quiet"}})
    await eventually(lambda: quiet.client_id in watcher.awareness, what="state arrives")
    # quiet never renews: the server drops it after the timeout and tells the room
    await eventually(lambda: quiet.client_id not in watcher.awareness, timeout=5, what="expiry")
    assert not quiet.closed.is_set()
    await quiet.close()
    await watcher.close()


def test_console_script_and_procfile():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert (root / "Procfile").read_text().strip().splitlines() == [
        "web: opencode-live serve --host 0.0.0.0 --port $PORT",
        "worker: opencode-live worker",
    ]
    worker = subprocess.run(
        ["opencode-live", "worker", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "--redis-url" in worker
    out = subprocess.run(
        ["opencode-live", "serve", "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for flag in ("--host", "--port", "--log-level", "--max-message-bytes", "--max-rooms"):
        assert flag in out
    bad = subprocess.run(
        ["opencode-live", "serve", "--log-level", "loud"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "log level must be one of" in bad.stderr


async def test_heartbeat_pings_everyone_and_drops_the_silent(server_factory, session):
    server = server_factory("--heartbeat-seconds", "0.3")
    # answers pings itself (autoping off), so the test can count them
    alive = await session.ws_connect(f"{server.ws}/rooms/beat", autoping=False)
    pings = 0

    async def answer() -> None:
        nonlocal pings
        while True:
            msg = await alive.receive()
            if msg.type is aiohttp.WSMsgType.PING:
                pings += 1
                await alive.pong(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return

    answering = asyncio.create_task(answer())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET /rooms/beat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Authorization: Bearer {server.token()}\r\n".encode()
        + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await writer.drain()
    # never answers: reads whatever comes until the server drops it
    data = b""
    while True:
        part = await asyncio.wait_for(reader.read(65536), 5)
        if not part:
            break
        data += part
    assert b"\x89\x00" in data  # it was pinged before being dropped
    # the answering client is kept: it goes on being pinged for three more intervals
    seen = pings
    await eventually(lambda: pings >= seen + 3 or answering.done(), timeout=5)
    assert not answering.done() and not alive.closed
    async with session.get(f"{server.http}/metrics") as resp:
        assert 'opencode_live_errors_total{kind="heartbeat_timeout"} 1.0' in await resp.text()
    writer.close()
    await alive.close()
    await asyncio.wait_for(answering, 5)


def _masked(payload: bytes) -> bytes:
    """A client's binary frame (clients must mask), for raw-socket tests."""
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((0x82, 0x80 | len(payload))) + mask + body


async def _upgrade(reader, writer, room: str, token: str) -> None:
    writer.write(
        f"GET /rooms/{room} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Cookie: theme=dark; ocl_session={token}\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's example accept key


async def _read_frame(reader) -> bytes:
    first, length = await asyncio.wait_for(reader.readexactly(2), 5)
    assert first == 0x82 and length < 126
    return await reader.readexactly(length)


@pytest.mark.parametrize("kept_alive", [False, True], ids=["fresh-connection", "kept-alive"])
async def test_room_socket_on_fresh_and_kept_alive_connections(server, session, kept_alive):
    """The front door takes a fresh connection; aiohttp hands over a reused one."""
    peer = await connected(session, server, "paths")
    peer.edit(lambda f: f.__setitem__("p.py", Text("ok")))
    await server_files(session, server, "paths", until=lambda f: "p.py" in f)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    if kept_alive:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    await _upgrade(reader, writer, "paths", server.token())
    # the server's sync step 1, then our step 1 (empty state vector) answered with the document
    assert parse_frame(await _read_frame(reader))[0].kind is MessageKind.SYNC_STEP1
    writer.write(_masked(b"\x00\x00\x01\x00"))
    await writer.drain()
    step2 = parse_frame(await _read_frame(reader))[0]
    assert step2.kind is MessageKind.SYNC_STEP2
    from pycrdt import Doc, Map

    doc = Doc()
    doc.apply_update(step2.payload)
    assert str(doc.get("files", type=Map)["p.py"]) == "ok"
    writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000, mask of zeros
    await writer.drain()
    closing = await asyncio.wait_for(reader.read(64), 5)
    assert closing[:1] == b"\x88"
    writer.close()
    await peer.close()
