"""Tokens at the real server: refused before the upgrade, on the API, and at expiry."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
import yarl
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rooms import CloseCode
from tests.pyclient import YClient

ISS = AUD = "opencode-live"


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "ada",
        "name": "Ada",
        "role": "student",
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + 600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _secret(server) -> str:
    return (server.data_dir / "auth-secret").read_text().strip()


async def _upgrade_status(server, path_qs: str, headers: dict[str, str] | None = None):
    """The status and JSON body the server answers a room upgrade with."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{server.http}{path_qs}",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
                **(headers or {}),
            },
        ) as resp,
    ):
        body = await resp.read()
        return resp.status, resp.headers, body


async def _raw_upgrade(server, path_qs: str, extra: str = "") -> tuple[int, bytes]:
    """The same, on a fresh TCP connection: the front door's answer, not aiohttp's."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        (
            f"GET {path_qs} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"{extra}\r\n"
        ).encode()
    )
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)  # the server answers and hangs up
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, body


@pytest.mark.parametrize(
    ("make", "status", "says"),
    [
        (lambda secret: None, 401, "missing token"),
        (lambda secret: "not.a.jwt", 401, "malformed token"),
        (
            lambda secret: jwt.encode(_claims(), "x" * 48, algorithm="HS256"),
            401,
            "invalid signature",
        ),
        (
            lambda secret: jwt.encode(_claims(), None, algorithm="none"),  # type: ignore[arg-type]
            401,
            "invalid signature",
        ),
        (
            lambda secret: jwt.encode(
                _claims(exp=int(time.time()) - 3600), secret, algorithm="HS256"
            ),
            401,
            "token expired",
        ),
        (
            lambda secret: jwt.encode(_claims(aud="other"), secret, algorithm="HS256"),
            403,
            "wrong audience",
        ),
        (
            lambda secret: jwt.encode(_claims(iss="evil"), secret, algorithm="HS256"),
            403,
            "wrong issuer",
        ),
        (
            lambda secret: jwt.encode(_claims(role="root"), secret, algorithm="HS256"),
            401,
            "bad claims",
        ),
    ],
    ids=["missing", "malformed", "forged", "alg-none", "expired", "audience", "issuer", "role"],
)
async def test_bad_tokens_are_refused_before_the_upgrade_with_the_reason(
    server, make, status, says
):
    token = make(_secret(server))
    query = f"?token={token}" if token else ""
    # on a fresh connection (the front door) and on a kept-alive one (aiohttp)
    got, body = await _raw_upgrade(server, f"/rooms/guarded{query}")
    assert got == status
    assert says in json.loads(body)["error"]
    got, headers, body = await _upgrade_status(server, f"/rooms/guarded{query}")
    assert got == status
    assert says in json.loads(body)["error"]
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")
    # and the API says the same
    async with aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with s.get(f"{server.http}/api/rooms", headers=headers) as resp:
            assert resp.status == status
            assert says in (await resp.json())["error"]


async def test_no_room_was_created_by_refused_upgrades(server, tokens):
    await _raw_upgrade(server, "/rooms/never-made")
    async with (
        aiohttp.ClientSession(headers=tokens.auth(role="admin", user_id="root")) as s,
        s.get(f"{server.http}/api/rooms/never-made") as resp,
    ):
        assert resp.status == 404


async def test_token_travels_as_query_header_or_cookie(server, tokens):
    token = tokens.token()
    async with aiohttp.ClientSession() as s:
        for kwargs in (
            {"url": f"{server.ws}/rooms/ways?token={token}"},
            {"url": f"{server.ws}/rooms/ways", "headers": {"Authorization": f"Bearer {token}"}},
            {"url": f"{server.ws}/rooms/ways", "headers": {"Cookie": f"ocl_session={token}"}},
        ):
            client = YClient(s, kwargs.pop("url"))
            await client.connect(**kwargs)
            await client.wait_synced()
            await client.close()


async def test_sign_in_link_token_does_not_open_a_room(server):
    verifier = server_verifier(server)
    link_token = verifier.mint(name="Ada", role="student", purpose="signin")
    status, body = await _raw_upgrade(server, f"/rooms/r1?token={link_token}")
    assert status == 403
    assert "sign-in link" in json.loads(body)["error"]


def server_verifier(server):
    from server.tokens import TokenVerifier

    return TokenVerifier(secret=_secret(server), issuer=ISS, audience=AUD)


async def test_token_for_another_room_is_refused(server, tokens):
    token = tokens.token(room="room-a")
    status, body = await _raw_upgrade(server, f"/rooms/room-b?token={token}")
    assert status == 403
    assert "for room 'room-a'" in json.loads(body)["error"]
    async with aiohttp.ClientSession() as s:
        ok = await YClient(s, f"{server.ws}/rooms/room-a?token={token}").connect()
        await ok.wait_synced()
        await ok.close()
        headers = {"Authorization": f"Bearer {token}"}
        async with s.get(f"{server.http}/api/rooms/room-b/files", headers=headers) as resp:
            assert resp.status == 403
            assert "for room 'room-a'" in (await resp.json())["error"]
        async with s.get(f"{server.http}/api/rooms/room-a/files", headers=headers) as resp:
            assert resp.status == 200


async def test_token_expiring_mid_session_closes_the_socket_with_4401(server_factory, tokens):
    server = server_factory("--auth-leeway-seconds", "0")
    token = tokens.token(ttl_seconds=3)
    async with aiohttp.ClientSession() as s:
        client = await YClient(s, f"{server.ws}/rooms/expiring?token={token}").connect()
        await client.wait_synced()
        code = await client.wait_closed(timeout=15)
        assert code == CloseCode.TOKEN_EXPIRED
        assert "sign in again" in client.close_reason
        # the same token cannot open it again
        status, body = await _raw_upgrade(server, f"/rooms/expiring?token={token}")
        assert status == 401 and "expired" in json.loads(body)["error"]


async def test_user_row_is_created_from_the_token_claims(server, tokens, database_url):
    import asyncpg

    async with aiohttp.ClientSession(
        headers=tokens.auth(
            user_id="grace", name="Grace H.", role="teaching_assistant", cohort="c1"
        )
    ) as s:
        async with s.get(f"{server.http}/api/me") as resp:
            me = await resp.json()
        assert me["name"] == "Grace H." and me["role"] == "teaching_assistant"
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", uuid.UUID(me["uuid"]))
        finally:
            await conn.close()
        assert row["username"] == "grace"
        assert (row["display_name"], row["role"], row["cohort"]) == (
            "Grace H.",
            "teaching_assistant",
            "c1",
        )


# -- JWKS deployment -----------------------------------------------------------


@pytest.fixture
async def jwks_server() -> AsyncIterator[tuple[str, dict[str, object]]]:
    """An identity provider's key set on loopback: one RSA and one EC key."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, key, alg in (("rsa-1", rsa_key, "RS256"), ("ec-1", ec_key, "ES256")):
        jwk = json.loads(
            (jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm).to_jwk(
                key.public_key()
            )
        )
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        keys.append(jwk)
    hits = {"count": 0}

    async def jwks(request: web.Request) -> web.Response:
        hits["count"] += 1
        return web.json_response({"keys": keys})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/jwks.json", {"rsa": rsa_key, "ec": ec_key, "hits": hits}
    finally:
        await runner.cleanup()


async def test_jwks_deployment_accepts_the_issuers_keys_only(server_factory, jwks_server):
    url, keys = jwks_server
    server = server_factory(
        "--auth-jwks-url", url, "--auth-issuer", "https://idp.test", "--auth-audience", "class-1"
    )
    good = {"iss": "https://idp.test", "aud": "class-1"}
    rs = jwt.encode(_claims(**good), keys["rsa"], algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(_claims(**good), keys["ec"], algorithm="ES256", headers={"kid": "ec-1"})
    async with aiohttp.ClientSession() as s:
        for token in (rs, es):
            client = await YClient(s, f"{server.ws}/rooms/idp?token={token}").connect()
            await client.wait_synced()
            await client.close()
    assert keys["hits"]["count"] >= 1  # fetched from the loopback key set

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        (
            jwt.encode(_claims(**good), stranger, algorithm="RS256", headers={"kid": "rsa-1"}),
            401,
            "invalid signature",
        ),
        (
            jwt.encode(_claims(**good), stranger, algorithm="RS256", headers={"kid": "nope"}),
            401,
            "unknown signing key",
        ),
        (
            jwt.encode(
                _claims(iss="https://evil", aud="class-1"),
                keys["rsa"],
                algorithm="RS256",
                headers={"kid": "rsa-1"},
            ),
            403,
            "wrong issuer",
        ),
        (
            jwt.encode(
                _claims(iss="https://idp.test", aud="class-2"),
                keys["rsa"],
                algorithm="RS256",
                headers={"kid": "rsa-1"},
            ),
            403,
            "wrong audience",
        ),
        # an HS256 token signed with the public key's text: the classic confusion attack
        (
            jwt.encode(_claims(**good), "k" * 64, algorithm="HS256", headers={"kid": "rsa-1"}),
            401,
            "invalid signature",
        ),
    ]
    for token, status, says in cases:
        got, body = await _raw_upgrade(server, f"/rooms/idp?token={token}")
        assert (got, says in json.loads(body)["error"]) == (status, True), (says, body)


async def test_sign_out_forgets_the_session_cookie(server, tokens):
    # unsafe: the jar keeps cookies of an IP-address host such as 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        s.cookie_jar.update_cookies({"ocl_session": tokens.token()}, yarl.URL(server.http))
        async with s.get(f"{server.http}/api/me") as resp:
            assert resp.status == 200
        async with s.post(f"{server.http}/signout", allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/"
            assert "ocl_session=" in resp.headers["Set-Cookie"]
        async with s.get(f"{server.http}/api/me") as resp:
            assert resp.status == 401
