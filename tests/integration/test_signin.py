"""First-start sign-in: the printed link signs an instructor in once, like Jupyter's."""

from __future__ import annotations

import asyncio
import subprocess
import time

import aiohttp
import asyncpg
import jwt
import pytest

from server.tokens import TokenVerifier


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def secret_of(server) -> str:  # type: ignore[no-untyped-def]
    return (server.data_dir / "auth-secret").read_text().strip()


def printed_link(server) -> str:  # type: ignore[no-untyped-def]
    for line in server.log_lines():
        if line.get("event") == "sign-in link for an instructor":
            return str(line["url"])
    raise AssertionError("the server printed no sign-in link")


async def test_printed_link_signs_an_instructor_in_once(server, session, database_url):
    link = printed_link(server)
    assert link.startswith(server.http + "/signin?token=")
    async with session.get(link, allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == "/"
        cookie = r.cookies["ocl_session"]
    assert cookie["httponly"]
    verifier = TokenVerifier(
        secret=secret_of(server), issuer="opencode-live", audience="opencode-live"
    )
    identity = verifier.verify(cookie.value)
    assert (identity.name, identity.role, identity.purpose) == (
        "Instructor",
        "instructor",
        "access",
    )
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT username, role FROM users WHERE username = 'instructor'")
    finally:
        await conn.close()
    assert row is not None and row["role"] == "instructor"
    # the session cookie is what signs the browser in to the API from now on
    me = f"{server.http}/api/me"
    async with session.get(me, cookies={"ocl_session": cookie.value}) as r:
        assert r.status == 200
        assert (await r.json())["role"] == "instructor"
    async with session.get(link, allow_redirects=False) as r:
        assert r.status == 403
        assert "used already" in (await r.json())["error"]


def signin_claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "s1",
        "name": "Eve",
        "role": "admin",
        "iss": "opencode-live",
        "aud": "opencode-live",
        "iat": now,
        "exp": now + 600,
        "purpose": "signin",
        "jti": f"j-{now}",
    }
    claims.update(over)
    return claims


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (
            lambda s: jwt.encode(signin_claims(), "x" * 48, algorithm="HS256"),
            401,
            "invalid signature",
        ),
        (lambda s: jwt.encode(signin_claims(), None, algorithm="none"), 401, "invalid signature"),
        (
            lambda s: jwt.encode(signin_claims(exp=int(time.time()) - 600), s, algorithm="HS256"),
            401,
            "token expired",
        ),
        (
            lambda s: jwt.encode(signin_claims(aud="elsewhere"), s, algorithm="HS256"),
            403,
            "wrong audience",
        ),
        (
            lambda s: jwt.encode(signin_claims(purpose="access"), s, algorithm="HS256"),
            403,
            "not a sign-in",
        ),
        (lambda s: "", 401, "missing token"),
    ],
    ids=["forged", "alg-none", "expired", "audience", "access-token", "missing"],
)
async def test_bad_signin_tokens_are_refused_by_name(server, session, make, status, reason):
    token = make(secret_of(server))
    async with session.get(
        f"{server.http}/signin", params={"token": token}, allow_redirects=False
    ) as r:
        assert r.status == status
        assert reason in (await r.json())["error"]
        assert "ocl_session" not in r.cookies


async def test_token_command_makes_signin_links_for_a_class(server, session, database_url):
    data_dir = server.data_dir
    link = await asyncio.to_thread(
        subprocess.run,
        [
            *("opencode-live", "token", "--name", "Ada", "--role", "student", "--cohort", "c1"),
            *("--signin-url", server.http + "/", "--data-dir", str(data_dir)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    link = link.stdout.strip()
    async with session.get(link, allow_redirects=False) as r:
        assert r.status == 302
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT display_name, role, cohort FROM users WHERE display_name = 'Ada'"
        )
    finally:
        await conn.close()
    assert dict(row) == {"display_name": "Ada", "role": "student", "cohort": "c1"}


@pytest.mark.parametrize(
    ("next_", "location"),
    [
        ("/r/class-1", "/r/class-1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
    ],
)
async def test_signin_redirects_only_within_the_server(server, session, next_, location):
    verifier = TokenVerifier(
        secret=secret_of(server), issuer="opencode-live", audience="opencode-live"
    )
    token = verifier.mint(name="Bo", role="student", purpose="signin")
    params = {"token": token, "next": next_}
    async with session.get(f"{server.http}/signin", params=params, allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == location
