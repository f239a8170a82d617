"""Identity tokens: every refusal names its rule; JWKS keys come from a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.tokens import (
    Refusal,
    TokenRefused,
    TokenVerifier,
    load_or_create_secret,
)

SECRET = "s" * 48
ISS, AUD = "opencode-live", "opencode-live"


def hs_verifier() -> TokenVerifier:
    return TokenVerifier(secret=SECRET, issuer=ISS, audience=AUD)


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "u-1",
        "name": "Ada",
        "role": "student",
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + 600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def refused(verifier: TokenVerifier, token: str | None) -> Refusal:
    with pytest.raises(TokenRefused) as err:
        verifier.verify(token)
    return err.value.why


def test_minted_token_round_trips():
    v = hs_verifier()
    ident = v.verify(v.mint(name="Ada", role="instructor", cohort="2026-a"))
    assert (ident.name, ident.role, ident.cohort) == ("Ada", "instructor", "2026-a")
    assert ident.expires_at > time.time()
    assert ident.user_uuid  # a UUID for the users table, whatever the sub looks like


@pytest.mark.parametrize(
    ("token_of", "why"),
    [
        (lambda: None, Refusal.MISSING),
        (lambda: "not.a.jwt", Refusal.MALFORMED),
        (lambda: jwt.encode(claims(), "another-secret-" * 3, algorithm="HS256"), Refusal.FORGED),
        (lambda: jwt.encode(claims(), None, algorithm="none"), Refusal.FORGED),
        (
            lambda: jwt.encode(claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"),
            Refusal.EXPIRED,
        ),
        (
            lambda: jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"),
            Refusal.WRONG_AUDIENCE,
        ),
        (lambda: jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), Refusal.WRONG_ISSUER),
        (lambda: jwt.encode(claims(sub=None), SECRET, algorithm="HS256"), Refusal.BAD_CLAIMS),
        (lambda: jwt.encode(claims(role="god"), SECRET, algorithm="HS256"), Refusal.BAD_CLAIMS),
        (
            lambda: jwt.encode(claims(nbf=int(time.time()) + 300), SECRET, algorithm="HS256"),
            Refusal.NOT_YET_VALID,
        ),
    ],
    ids=[
        "missing",
        "malformed",
        "forged",
        "alg-none",
        "expired",
        "audience",
        "issuer",
        "no-sub",
        "role",
        "nbf",
    ],
)
def test_refusals_name_the_rule(token_of, why):
    assert refused(hs_verifier(), token_of()) is why


def test_small_clock_skew_is_tolerated():
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert hs_verifier().verify(token).name == "Ada"


def test_secret_file_is_created_once_and_private(tmp_path):
    first = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == first and len(first) >= 32
    assert (tmp_path / "auth-secret").stat().st_mode & 0o777 == 0o600


def test_exactly_one_mode():
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISS, audience=AUD)
    with pytest.raises(ValueError):
        TokenVerifier(secret=SECRET, jwks_url="http://127.0.0.1:1/jwks", issuer=ISS, audience=AUD)


async def test_jwks_mode_verifies_rs256_and_es256_from_a_key_set_served_on_loopback():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": []}
    for kid, key, alg in (("r1", rsa_key, "RS256"), ("e1", ec_key, "ES256")):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        jwks["keys"].append({**jwk, "kid": kid, "alg": alg, "use": "sig"})

    async def serve_jwks(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve_jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        verifier = TokenVerifier(
            jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json",
            issuer="https://idp.example",
            audience="classroom",
        )
        good = claims(iss="https://idp.example", aud="classroom", role="instructor")
        for kid, key, alg in (("r1", rsa_key, "RS256"), ("e1", ec_key, "ES256")):
            token = jwt.encode(good, key, algorithm=alg, headers={"kid": kid})
            ident = await asyncio.to_thread(verifier.verify, token)
            assert ident.role == "instructor"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(good, other, algorithm="RS256", headers={"kid": "r1"})
        assert await asyncio.to_thread(refused, verifier, forged) is Refusal.FORGED
        unknown = jwt.encode(good, other, algorithm="RS256", headers={"kid": "nope"})
        assert await asyncio.to_thread(refused, verifier, unknown) is Refusal.UNKNOWN_KEY
        wrong_aud = jwt.encode(
            {**good, "aud": "opencode-live"}, rsa_key, algorithm="RS256", headers={"kid": "r1"}
        )
        assert await asyncio.to_thread(refused, verifier, wrong_aud) is Refusal.WRONG_AUDIENCE
        # an HS256 token signed with the public key (algorithm confusion) is refused
        hs = jwt.encode(good, "x" * 40, algorithm="HS256", headers={"kid": "r1"})
        assert await asyncio.to_thread(refused, verifier, hs) is Refusal.FORGED
    finally:
        await runner.cleanup()


def test_token_command_mints_with_the_data_folder_secret(tmp_path):
    import subprocess

    out = subprocess.run(
        [
            *("opencode-live", "token", "--name", "Ada", "--role", "student"),
            *("--cohort", "c1", "--data-dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    secret = load_or_create_secret(tmp_path)  # the file the command created
    ident = TokenVerifier(secret=secret, issuer=ISS, audience=AUD).verify(out)
    assert (ident.name, ident.role, ident.cohort) == ("Ada", "student", "c1")
    assert refused(hs_verifier(), out) is Refusal.FORGED  # another deployment's secret
