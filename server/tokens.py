"""Identity tokens: JWTs checked with pyjwt, in one of two configured modes.

- **Shared secret** (HS256): one deployment mints and checks its own tokens;
  the secret comes from the settings or, on first start, from a file the
  server creates in its data folder.
- **Issuer's key set** (RS256/ES256 from a JWKS URL): a deployment behind an
  identity provider; ``iss`` and ``aud`` are always checked.

Every refusal says which rule failed (missing, forged, expired, wrong
audience, wrong issuer, bad claims) so the HTTP answer can name it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt

ROLES = ("student", "instructor", "teaching_assistant", "admin")
SECRET_FILE = "auth-secret"
#: Seconds of clock skew tolerated on ``exp``/``nbf``/``iat``.
LEEWAY_SECONDS = 30
HS_ALGORITHMS = ["HS256"]
JWKS_ALGORITHMS = ["RS256", "ES256"]


class Refusal(StrEnum):
    """Why a token was refused: the client is told which."""

    MISSING = "missing token"
    MALFORMED = "malformed token"
    FORGED = "invalid signature"
    EXPIRED = "token expired"
    NOT_YET_VALID = "token not yet valid"
    WRONG_AUDIENCE = "wrong audience"
    WRONG_ISSUER = "wrong issuer"
    BAD_CLAIMS = "bad claims"
    UNKNOWN_KEY = "unknown signing key"


class TokenRefused(Exception):
    def __init__(self, why: Refusal, detail: str = "") -> None:
        super().__init__(f"{why.value}: {detail}" if detail else why.value)
        self.why = why
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token speaks for."""

    user_id: str
    name: str
    role: str
    cohort: str | None
    expires_at: float
    #: "signin" for a one-time sign-in link's token, else "access".
    purpose: str = "access"
    #: The token's own id (``jti``): what makes a sign-in link single-use.
    token_id: str | None = None
    #: A token for one room only (``room`` claim): any other room refuses it.
    room: str | None = None

    @property
    def user_uuid(self) -> uuid.UUID:
        return subject_uuid(self.user_id)


def subject_uuid(subject: str) -> uuid.UUID:
    """A stable UUID for the users table, whatever form the issuer's ``sub`` has."""
    try:
        return uuid.UUID(subject)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"opencode-live:user:{subject}")


def load_or_create_secret(data_dir: Path) -> str:
    """The shared secret in the data folder, created (mode 0600) on first start."""
    path = data_dir / SECRET_FILE
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise ValueError(f"{path} holds a secret shorter than 32 characters")
        return secret
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd_path = path.with_suffix(".tmp")
    fd_path.write_text(secret + "\n")
    fd_path.chmod(0o600)
    fd_path.replace(path)
    return secret


class TokenVerifier:
    """Checks tokens in the configured mode; ``mint`` exists only in shared-secret mode."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str,
        audience: str,
        jwks_client: jwt.PyJWKClient | None = None,
        leeway_seconds: float = LEEWAY_SECONDS,
    ) -> None:
        if (secret is None) == (jwks_url is None and jwks_client is None):
            raise ValueError("configure exactly one of a shared secret or a JWKS URL")
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._jwks = jwks_client or (jwt.PyJWKClient(jwks_url) if jwks_url else None)

    def mint(
        self,
        *,
        name: str,
        role: str,
        user_id: str | None = None,
        cohort: str | None = None,
        ttl_seconds: int = 12 * 3600,
        purpose: str = "access",
        room: str | None = None,
    ) -> str:
        if self.secret is None:
            raise ValueError("tokens are minted by the identity provider in JWKS mode")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id or str(uuid.uuid4()),
            "name": name,
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        if cohort:
            claims["cohort"] = cohort
        if room:
            claims["room"] = room
        if purpose != "access":
            claims["purpose"] = purpose
            claims["jti"] = secrets.token_urlsafe(16)
        return jwt.encode(claims, self.secret, algorithm="HS256")

    @property
    def blocking(self) -> bool:
        """JWKS mode may fetch the key set over the network: verify off the event loop."""
        return self._jwks is not None

    def verify(self, token: str | None) -> Identity:
        """The identity a token carries, or TokenRefused naming the rule it broke.

        Blocking in JWKS mode when the key set must be fetched: call it off the
        event loop there (``asyncio.to_thread``).
        """
        if not token:
            raise TokenRefused(Refusal.MISSING)
        try:
            if self._jwks is not None:
                try:
                    key: Any = self._jwks.get_signing_key_from_jwt(token).key
                except jwt.PyJWKClientError as exc:
                    raise TokenRefused(Refusal.UNKNOWN_KEY, str(exc)) from exc
                algorithms = JWKS_ALGORITHMS
            else:
                key, algorithms = self.secret, HS_ALGORITHMS
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRefused(Refusal.EXPIRED) from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRefused(Refusal.NOT_YET_VALID) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRefused(Refusal.WRONG_AUDIENCE) from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRefused(Refusal.WRONG_ISSUER) from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenRefused(Refusal.FORGED) from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenRefused(Refusal.FORGED, "algorithm not allowed") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(Refusal.BAD_CLAIMS, str(exc)) from exc
        except jwt.DecodeError as exc:
            raise TokenRefused(Refusal.MALFORMED, str(exc)) from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(Refusal.BAD_CLAIMS, str(exc)) from exc
        return _identity(claims)


def _identity(claims: dict[str, Any]) -> Identity:
    role = claims.get("role", "student")
    name = claims.get("name") or claims.get("preferred_username") or claims["sub"]
    cohort = claims.get("cohort")
    room = claims.get("room")
    if role not in ROLES:
        raise TokenRefused(Refusal.BAD_CLAIMS, f"role must be one of {', '.join(ROLES)}")
    if not isinstance(name, str) or not isinstance(claims["sub"], str):
        raise TokenRefused(Refusal.BAD_CLAIMS, "sub and name must be strings")
    if cohort is not None and not isinstance(cohort, str):
        raise TokenRefused(Refusal.BAD_CLAIMS, "cohort must be a string")
    if room is not None and not isinstance(room, str):
        raise TokenRefused(Refusal.BAD_CLAIMS, "room must be a string")
    return Identity(
        user_id=claims["sub"],
        name=name,
        role=role,
        cohort=cohort,
        expires_at=float(claims["exp"]),
        purpose=str(claims.get("purpose", "access")),
        token_id=claims.get("jti"),
        room=room,
    )
