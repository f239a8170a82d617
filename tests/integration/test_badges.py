"""Achievements exported as Open Badges 3.0 credentials, at the real server and Postgres
(issue 8): the JSON credential's fields, the VC-JWT verified offline with the published
key set (pyjwt, as a verifier would), tampering caught, who may export whose badge.

The official OB 3.0 JSON schema is not vendored here; the fields it requires (and the
ones the spec's data model requires) are checked one by one in ``check_ob3``.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from progress import SubmissionGraded, apply_event
from server.tokens import subject_uuid
from store import Store
from tests.integration.coursedb import call, load_sample

GREET = "py101.basics.greet"
AMY = {"user_id": "amy", "name": "Amy", "cohort": "red"}
ALF = {"user_id": "alf", "name": "Alf", "cohort": "red"}
TA_RED = {"user_id": "tara", "name": "Tara", "role": "teaching_assistant", "cohort": "red"}
PROF_BLUE = {"user_id": "pat", "name": "Pat", "role": "instructor", "cohort": "blue"}

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
#: What AchievementSubject may hold (the OB 3.0 schema closes it: additionalProperties false).
SUBJECT_FIELDS = {
    "id",
    "type",
    "activityEndDate",
    "activityStartDate",
    "creditsEarned",
    "achievement",
    "identifier",
    "image",
    "licenseNumber",
    "narrative",
    "result",
    "role",
    "source",
    "term",
}


@pytest.fixture
async def awarded(server_factory, database_url, tokens):
    """Amy passed greet at the first try (first-steps and first-try awarded); Alf
    and the staff signed in once and hold nothing."""
    server = server_factory()
    load_sample(database_url)
    for who in (AMY, ALF, TA_RED, PROF_BLUE):
        status, _ = await call(server, "GET", "/api/me", who, tokens)
        assert status == 200
    store = await Store.open(database_url, migrate=False)
    try:
        await apply_event(
            store,
            SubmissionGraded(
                key=f"test:{uuid.uuid4()}",
                user_id=subject_uuid("amy"),
                occurred_at=datetime.now(UTC),
                exercise_id=GREET,
                files={"main.py": "print('hi')"},
                language="python",
                score=1.0,
                passed=True,
                test_results=[{"name": "t", "passed": True, "message": ""}],
            ),
        )
        async with store.connection("test") as conn:
            awarded_at = await conn.fetchval(
                "SELECT awarded_at FROM user_achievements "
                "WHERE user_id = $1 AND achievement_id = 'first-steps'",
                subject_uuid("amy"),
            )
    finally:
        await store.close()
    assert awarded_at is not None
    return server, awarded_at


async def public(server: Any, path: str) -> tuple[int, Any, str]:
    """A GET without any token (as a verifier elsewhere): status, JSON body, type."""
    async with aiohttp.ClientSession() as s, s.get(f"{server.http}{path}") as r:
        return r.status, await r.json(content_type=None), r.content_type


async def raw(server: Any, path: str, who: dict, tokens: Any) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession(headers=tokens.auth(**who)) as s,
        s.get(f"{server.http}{path}") as r,
    ):
        return r.status, await r.text(), r.content_type


def check_ob3(vc: dict[str, Any]) -> None:
    """The fields the OB 3.0 AchievementCredential schema and data model require."""
    for field in ("@context", "id", "type", "issuer", "validFrom", "credentialSubject"):
        assert field in vc, field
    assert vc["@context"][0] == VC_CONTEXT and OB_CONTEXT in vc["@context"]
    assert {"VerifiableCredential", "OpenBadgeCredential"} <= set(vc["type"])
    assert vc["id"].startswith("http")
    issuer = vc["issuer"]
    assert issuer["id"].startswith("http") and "Profile" in issuer["type"] and issuer["name"]
    datetime.strptime(vc["validFrom"], "%Y-%m-%dT%H:%M:%SZ")
    subject = vc["credentialSubject"]
    assert set(subject) <= SUBJECT_FIELDS, set(subject) - SUBJECT_FIELDS
    assert "AchievementSubject" in subject["type"]
    assert subject.get("id") or subject.get("identifier")
    achievement = subject["achievement"]
    for field in ("id", "type", "name", "description", "criteria"):
        assert achievement.get(field), field
    assert "Achievement" in achievement["type"]
    assert achievement["criteria"].get("narrative") or achievement["criteria"].get("id")
    if "image" in achievement:
        assert achievement["image"]["type"] == "Image" and achievement["image"]["id"]


async def test_credential_fields(awarded, tokens) -> None:
    server, awarded_at = awarded
    amy = subject_uuid("amy")
    path = "/api/users/me/achievements/first-steps/credential"
    status, body, kind = await raw(server, path, AMY, tokens)
    assert status == 200 and kind == "application/ld+json", body
    vc = json.loads(body)
    check_ob3(vc)
    origin = server.http
    assert vc["id"] == f"{origin}/api/users/{amy}/achievements/first-steps/credential"
    assert vc["issuer"] == {
        "id": f"{origin}/badges/issuer",
        "type": ["Profile"],
        "name": "opencode-live",
        "url": f"{origin}/",
    }
    assert vc["validFrom"] == awarded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    subject = vc["credentialSubject"]
    assert subject["id"] == f"urn:uuid:{amy}"
    achievement = subject["achievement"]
    assert achievement["id"] == f"{origin}/badges/achievements/first-steps"
    assert achievement["name"] == "First steps"
    assert achievement["description"] == "Pass your first exercise."
    assert achievement["criteria"] == {"narrative": "Pass an exercise."}
    assert achievement["achievementType"] == "Badge"
    image = achievement["image"]
    assert image["id"].startswith("data:image/svg+xml;base64,")
    assert "👣" in base64.b64decode(image["id"].split(",", 1)[1]).decode()

    # the same document every time (stable id, same bytes), and by the user's id too
    status, again, _ = await raw(
        server, f"/api/users/{amy}/achievements/first-steps/credential", TA_RED, tokens
    )
    assert status == 200 and json.loads(again) == vc

    # the ids it carries are documents anyone can fetch, without a token
    status, issuer, kind = await public(server, "/badges/issuer")
    assert status == 200 and kind == "application/ld+json"
    assert issuer["id"] == vc["issuer"]["id"] and issuer["type"] == ["Profile"]
    assert issuer["jwks_uri"] == f"{origin}/badges/jwks"
    status, definition, _ = await public(server, "/badges/achievements/first-steps")
    assert status == 200
    assert definition["@context"] == [VC_CONTEXT, OB_CONTEXT]
    assert {k: v for k, v in definition.items() if k != "@context"} == achievement
    status, _, _ = await public(server, "/badges/achievements/nothing-such")
    assert status == 404
    # and under /api/badges for signed-in clients (there a token is needed)
    status, body = await call(server, "GET", "/api/badges/achievements/first-try", ALF, tokens)
    assert status == 200 and body["criteria"] == {
        "narrative": "Pass an exercise with the first submission."
    }
    status, body = await call(server, "GET", "/api/badges/issuer", ALF, tokens)
    assert status == 200 and body == issuer
    status, _, _ = await public(server, "/api/badges/issuer")
    assert status == 401


async def test_jwt_verifies_with_the_published_keys(awarded, tokens, server_factory) -> None:
    server, awarded_at = awarded
    path = "/api/users/me/achievements/first-steps/credential"
    status, token, kind = await raw(server, f"{path}?format=jwt", AMY, tokens)
    assert status == 200 and kind == "application/jwt", token
    status, vc_text, _ = await raw(server, path, AMY, tokens)
    vc = json.loads(vc_text)

    status, jwks, kind = await public(server, "/badges/jwks")
    assert status == 200 and kind == "application/jwk-set+json"
    assert all("d" not in k and "p" not in k for k in jwks["keys"])  # public halves only
    keys = jwt.PyJWKSet.from_dict(jwks)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and set(header) <= {"alg", "kid", "typ", "jwk"}
    key = keys[header["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], options={"require": ["nbf"]})
    # the payload is the credential itself, with OB 3.0's registered claims
    assert {k: v for k, v in claims.items() if k not in ("iss", "jti", "sub", "nbf")} == vc
    assert claims["iss"] == vc["issuer"]["id"]
    assert claims["jti"] == vc["id"]
    assert claims["sub"] == vc["credentialSubject"]["id"]
    assert claims["nbf"] == int(awarded_at.replace(microsecond=0).timestamp())
    check_ob3(claims)
    # kid is a URL that dereferences to that very key
    assert header["kid"].startswith(f"{server.http}/badges/keys/")
    status, one, _ = await public(server, header["kid"].removeprefix(server.http))
    assert status == 200 and one == jwks["keys"][0]

    # tampering: another achievement name in the payload, or a changed signature
    head, payload, signature = token.split(".")
    forged = dict(claims)
    forged["credentialSubject"] = {
        **claims["credentialSubject"],
        "achievement": {**claims["credentialSubject"]["achievement"], "name": "Legend"},
    }
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{forged_payload}.{signature}", key.key, algorithms=["RS256"])
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{payload}.{flipped}", key.key, algorithms=["RS256"])
    # a credential signed by anyone else with the same kid does not verify either
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = jwt.encode(forged, other, algorithm="RS256", headers={"kid": header["kid"]})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(impostor, key.key, algorithms=["RS256"])

    # the key is kept in the data folder: a restarted server signs alike
    again = server_factory()
    status, jwks_again, _ = await public(again, "/badges/jwks")
    assert [k["n"] for k in jwks_again["keys"]] == [k["n"] for k in jwks["keys"]]
    status, token_again, _ = await raw(again, f"{path}?format=jwt", AMY, tokens)
    assert status == 200
    verified = jwt.decode(
        token_again, jwt.PyJWKSet.from_dict(jwks_again).keys[0].key, algorithms=["RS256"]
    )
    assert verified["credentialSubject"] == claims["credentialSubject"] | {
        "achievement": {
            **claims["credentialSubject"]["achievement"],
            "id": claims["credentialSubject"]["achievement"]["id"].replace(server.http, again.http),
            "creator": {
                **claims["credentialSubject"]["achievement"]["creator"],
                "id": f"{again.http}/badges/issuer",
                "url": f"{again.http}/",
            },
        }
    }


async def test_who_may_export_which_credential(awarded, tokens) -> None:
    server, _ = awarded
    amy = subject_uuid("amy")
    path = f"/api/users/{amy}/achievements/first-steps/credential"
    for who, expected in ((AMY, 200), (TA_RED, 200), (ALF, 403), (PROF_BLUE, 404)):
        for query in ("", "?format=jwt"):
            status, body, _ = await raw(server, path + query, who, tokens)
            assert status == expected, (who, query, body)
            if status != 200:
                assert "error" in json.loads(body)
    # not awarded (Amy has not passed ten exercises; Alf passed nothing): 404
    for who, user in ((AMY, "me"), (ALF, "me"), (TA_RED, "alf")):
        for achievement in ("ten-exercises", "first-steps"):
            if who is AMY and achievement == "first-steps":
                continue
            status, body, _ = await raw(
                server, f"/api/users/{user}/achievements/{achievement}/credential", who, tokens
            )
            assert status == 404 and "not awarded" in json.loads(body)["error"], body
    status, body, _ = await raw(
        server, "/api/users/me/achievements/no-such/credential?format=jwt", AMY, tokens
    )
    assert status == 404
    status, body, _ = await raw(
        server, "/api/users/me/achievements/first-steps/credential?format=xml", AMY, tokens
    )
    assert status == 400 and "format" in json.loads(body)["error"]
    status, _, _ = await public(server, path)
    assert status == 401


async def test_ids_use_the_public_url_not_the_host_header(
    server_factory, database_url, tokens
) -> None:
    """With --public-url the issuer's identity is the configured address: a client
    sending another Host header cannot get credentials naming its own host."""
    server = server_factory("--public-url", "https://class.example.org/")
    load_sample(database_url)
    status, issuer, _ = await public(server, "/badges/issuer")
    assert status == 200 and issuer["id"] == "https://class.example.org/badges/issuer"
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{server.http}/badges/issuer", headers={"Host": "evil.example"}) as r,
    ):
        assert (await r.json())["id"] == "https://class.example.org/badges/issuer"
