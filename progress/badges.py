"""Achievements as Open Badges 3.0 credentials (issue 8).

An awarded achievement becomes an ``OpenBadgeCredential``: a W3C Verifiable
Credential (data model 2.0) with the Open Badges 3.0 context, whose subject
(``AchievementSubject``) holds the ``Achievement`` as it is defined here. The
proof is the one OB 3.0 calls VC-JWT: the credential is the payload of a JWT
signed with the server's badge key (RS256, the one algorithm the spec requires
every verifier to support), plus the registered claims the spec maps onto it
(``iss`` = issuer id, ``jti`` = credential id, ``sub`` = subject id, ``nbf`` =
``validFrom``). Anyone holding the compact JWT and the published public key
(a JWK set) checks it offline: nothing else needs to be trusted or fetched.

Ids are URLs under one origin (the server's public address): the issuer
profile, each achievement definition and each credential have their own, so a
credential stays the same document (same id, same bytes, same signature: RSA
PKCS#1 v1.5 signatures are deterministic and no issue time is added) however
often it is exported. The recipient is named by an opaque ``urn:uuid:`` (the
person's user id), not by an e-mail address.

This module builds and signs; reading the key file and serving the documents
belong to the server (server/badgesapi.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CONTEXTS = (VC_CONTEXT, OB_CONTEXT)
ALGORITHM = "RS256"
KEY_FILE = "badge-key.pem"
RSA_BITS = 2048
#: OB 3.0's achievementType vocabulary: a classroom achievement is a badge.
ACHIEVEMENT_TYPE = "Badge"
ISSUER_NAME = "opencode-live"

#: How each metric reads in a criteria narrative ("{n}" is the target).
_PHRASES: dict[str, tuple[str, str]] = {
    "exercises_passed": ("Pass an exercise.", "Pass {n} exercises."),
    "first_try_passes": (
        "Pass an exercise with the first submission.",
        "Pass {n} exercises, each with its first submission.",
    ),
    "lessons_completed": ("Complete a lesson.", "Complete {n} lessons."),
    "demos_watched": ("Watch a demo to the end.", "Watch {n} demos to the end."),
    "distinct_partners": ("Pair-program with someone.", "Pair-program with {n} different people."),
    "questions_asked": ("Ask a question in a session.", "Ask {n} questions in sessions."),
    "questions_answered": ("Answer a classmate's question.", "Answer {n} classmates' questions."),
    "streak_days": ("Be active on a day.", "Be active {n} days in a row."),
}


@dataclass(frozen=True, slots=True)
class Urls:
    """Where each document lives, under the server's public origin (``https://host``)."""

    origin: str

    @property
    def issuer(self) -> str:
        return f"{self.origin}/badges/issuer"

    @property
    def jwks(self) -> str:
        return f"{self.origin}/badges/jwks"

    def key(self, thumbprint: str) -> str:
        return f"{self.origin}/badges/keys/{thumbprint}"

    def achievement(self, achievement_id: str) -> str:
        return f"{self.origin}/badges/achievements/{quote(achievement_id, safe='')}"

    def credential(self, user_id: uuid.UUID, achievement_id: str) -> str:
        """The API address that answers with this very credential (to its holder)."""
        return (
            f"{self.origin}/api/users/{user_id}/achievements/"
            f"{quote(achievement_id, safe='')}/credential"
        )


@dataclass(frozen=True, slots=True)
class Definition:
    """An achievement as the catalogue holds it (table ``achievements``)."""

    id: str
    name: str
    description: str
    icon: str
    conditions: tuple[dict[str, Any], ...]
    retired: bool

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Definition:
        conditions = row["conditions"]
        if isinstance(conditions, str):
            conditions = json.loads(conditions)
        return cls(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            icon=row["icon"],
            conditions=tuple(conditions),
            retired=row["retired_at"] is not None,
        )


def narrative(conditions: Sequence[dict[str, Any]]) -> str:
    """What earns the achievement, in words, from its conditions (all must hold)."""
    parts = []
    for c in conditions:
        metric, target = c.get("metric", ""), int(c.get("at_least", 1))
        one, many = _PHRASES.get(metric, (f"Reach {metric} 1.", f"Reach {metric} {{n}}."))
        parts.append(one if target == 1 else many.format(n=target))
    if not parts:
        return "Awarded by the course staff."
    return " ".join(parts) if len(parts) == 1 else "All of: " + " ".join(parts)


def _image(icon: str, caption: str) -> dict[str, Any] | None:
    """The achievement's icon as an OB ``Image``: a URL as is, an emoji (what the
    shipped catalogue uses) as a small self-contained SVG data URL, so that a
    wallet shows it without fetching anything from this server."""
    icon = icon.strip()
    if not icon:
        return None
    if icon.startswith(("https://", "http://", "data:")):
        return {"id": icon, "type": "Image", "caption": caption}
    text = icon.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 128 128">'
        f'<text x="64" y="92" font-size="80" text-anchor="middle">{text}</text></svg>'
    )
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return {"id": f"data:image/svg+xml;base64,{data}", "type": "Image", "caption": caption}


def issuer_profile(urls: Urls, name: str = ISSUER_NAME) -> dict[str, Any]:
    """The issuer ``Profile``; it names the key set that verifies its credentials."""
    return {
        "@context": list(CONTEXTS),
        "id": urls.issuer,
        "type": ["Profile"],
        "name": name,
        "url": urls.origin + "/",
        "description": "The opencode-live classroom server that awarded these achievements.",
        # Not an OB 3.0 term: where the keys of this issuer's VC-JWTs are published.
        "jwks_uri": urls.jwks,
    }


def _embedded_profile(urls: Urls, name: str) -> dict[str, Any]:
    """The profile as embedded in a credential: OB terms only (no ``@context``)."""
    return {"id": urls.issuer, "type": ["Profile"], "name": name, "url": urls.origin + "/"}


def achievement(urls: Urls, definition: Definition, *, standalone: bool = False) -> dict[str, Any]:
    """The ``Achievement`` (``standalone``: as its own JSON-LD document, with a context)."""
    body: dict[str, Any] = {
        "id": urls.achievement(definition.id),
        "type": ["Achievement"],
        "name": definition.name,
        "description": definition.description or definition.name,
        "criteria": {"narrative": narrative(definition.conditions)},
        "achievementType": ACHIEVEMENT_TYPE,
        "creator": _embedded_profile(urls, ISSUER_NAME),
    }
    image = _image(definition.icon, definition.name)
    if image is not None:
        body["image"] = image
    if standalone:
        return {"@context": list(CONTEXTS), **body}
    return body


def _timestamp(at: datetime) -> str:
    """``validFrom`` as the VC data model wants it: UTC, whole seconds, a ``Z``."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject_id(user_id: uuid.UUID) -> str:
    return f"urn:uuid:{user_id}"


def credential(
    urls: Urls,
    definition: Definition,
    user_id: uuid.UUID,
    awarded_at: datetime,
    *,
    issuer_name: str = ISSUER_NAME,
) -> dict[str, Any]:
    """The ``OpenBadgeCredential`` for ``user_id``'s award of ``definition``."""
    when = _timestamp(awarded_at)
    return {
        "@context": list(CONTEXTS),
        "id": urls.credential(user_id, definition.id),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": definition.name,
        "description": definition.description or definition.name,
        "issuer": _embedded_profile(urls, issuer_name),
        "validFrom": when,
        "awardedDate": when,
        "credentialSubject": {
            "id": subject_id(user_id),
            "type": ["AchievementSubject"],
            "achievement": achievement(urls, definition),
        },
    }


# -- the signing key ------------------------------------------------------------------


class BadgeKey:
    """The server's badge-signing key (RSA, RS256) and its public JWK."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self.private = private
        self.thumbprint = _thumbprint(self._public_members())

    def _public_members(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {"e": _b64_int(numbers.e), "kty": "RSA", "n": _b64_int(numbers.n)}

    def public_jwk(self, urls: Urls) -> dict[str, str]:
        """The public key as a JWK whose ``kid`` is the URL it is published at."""
        return {
            **self._public_members(),
            "kid": urls.key(self.thumbprint),
            "alg": ALGORITHM,
            "use": "sig",
        }

    def jwks(self, urls: Urls) -> dict[str, Any]:
        return {"keys": [self.public_jwk(urls)]}

    def sign(self, urls: Urls, vc: dict[str, Any]) -> str:
        """The credential as a compact VC-JWT: the credential is the payload, with the
        registered claims OB 3.0 maps onto it; the header names the key by URL."""
        valid_from = datetime.strptime(vc["validFrom"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        claims = {
            **vc,
            "iss": vc["issuer"]["id"],
            "jti": vc["id"],
            "sub": vc["credentialSubject"]["id"],
            "nbf": int(valid_from.timestamp()),
        }
        return jwt.encode(
            claims,
            self.private,
            algorithm=ALGORITHM,
            headers={"kid": urls.key(self.thumbprint), "typ": "JWT"},
        )

    @classmethod
    def load_or_create(cls, data_dir: Path) -> BadgeKey:
        """The key in ``data_dir/badge-key.pem``, made (mode 0600) the first time.

        Two processes starting together on one data folder both end up with the
        key that reached the file first: each writes its own candidate aside and
        hard-links it into place, which fails for the second, who then reads the
        first's. A key that changed would orphan every credential issued before.
        """
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            candidate = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
            pem = candidate.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            aside = data_dir / f".{KEY_FILE}.{uuid.uuid4().hex}"
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
                try:
                    os.link(aside, path)
                except FileExistsError:
                    pass  # another process made it first: theirs is the key
            finally:
                aside.unlink(missing_ok=True)
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key (RS256 needs one)")
        return cls(private)


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256 of the required members, sorted, no spaces)."""
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


# -- the database ---------------------------------------------------------------------

_DEFINITION = (
    "SELECT id, name, description, icon, conditions, retired_at FROM achievements WHERE id = $1"
)


async def definition(conn: asyncpg.Connection, achievement_id: str) -> Definition | None:
    """An achievement of the catalogue (retired ones too: they were awarded once)."""
    row = await conn.fetchrow(_DEFINITION, achievement_id)
    return Definition.from_row(row) if row is not None else None


async def award(
    conn: asyncpg.Connection, user_id: uuid.UUID, achievement_id: str
) -> tuple[Definition, datetime] | None:
    """The achievement and when ``user_id`` was awarded it; None when not awarded."""
    row = await conn.fetchrow(
        """
        SELECT a.id, a.name, a.description, a.icon, a.conditions, a.retired_at, ua.awarded_at
        FROM user_achievements ua JOIN achievements a ON a.id = ua.achievement_id
        WHERE ua.user_id = $1 AND ua.achievement_id = $2 AND ua.awarded_at IS NOT NULL
        """,
        user_id,
        achievement_id,
    )
    if row is None:
        return None
    return Definition.from_row(row), row["awarded_at"]
