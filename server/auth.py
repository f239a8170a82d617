"""Who is asking, and may they enter this room: one gate for the socket and the API.

A token travels as ``?token=``, an ``Authorization: Bearer`` header, or the
``ocl_session`` cookie the sign-in sets. The gate verifies it (off the event
loop in JWKS mode, where the key set may be fetched), keeps the user's row in
step with its claims, and works out the person's role in the room from the
stored rules (``rooms.access``). A room that does not exist yet is created by
the first person to enter it, who owns it.

Every refusal carries the HTTP status and a message that says which rule
failed; the socket answers it before the upgrade, the API as its JSON error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from rooms import STAFF_ROLES, Person, RoomRole, refusal, room_role
from store import Store, StoreUnavailable

from .tokens import Identity, Refusal, TokenRefused, TokenVerifier

SESSION_COOKIE = "ocl_session"
#: Users whose row is known to match their claims; forgotten wholesale past this.
MAX_KNOWN_USERS = 100_000


class Refused(Exception):
    """A request the gate turns away: ``status`` and a message naming the rule."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Admission:
    """A person let into a room, with their role there."""

    identity: Identity
    person: Person
    role: RoomRole
    #: Wall-clock time (``time.time()``) at which the token stops being accepted.
    valid_until: float


def token_from(query: str, headers: Iterable[tuple[str, str]]) -> str | None:
    """The token of a request: query parameter, then bearer header, then session cookie."""
    values = parse_qs(query).get("token")
    if values:
        return values[0]
    cookie_token = None
    for name, value in headers:
        lower = name.lower()
        if lower == "authorization":
            scheme, _, credentials = value.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif lower == "cookie" and cookie_token is None:
            cookie_token = _session_cookie(value)
    return cookie_token


def _session_cookie(header: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def refusal_status(why: Refusal) -> int:
    """401 when the token is missing or unusable, 403 when it is valid but not for us."""
    return 403 if why in (Refusal.WRONG_AUDIENCE, Refusal.WRONG_ISSUER) else 401


def person_of(identity: Identity) -> Person:
    return Person(
        user_id=identity.user_uuid, name=identity.name, role=identity.role, cohort=identity.cohort
    )


class Gate:
    def __init__(self, verifier: TokenVerifier, store: Store) -> None:
        self.verifier = verifier
        self.store = store
        self._known: dict[uuid.UUID, tuple[str, str, str | None]] = {}

    async def identify(self, token: str | None) -> Identity:
        """The identity of an access token, or Refused (401/403) naming the rule it broke."""
        try:
            if self.verifier.blocking and token:
                identity = await asyncio.to_thread(self.verifier.verify, token)
            else:
                identity = self.verifier.verify(token)
        except TokenRefused as refused:
            raise Refused(refusal_status(refused.why), f"token refused: {refused}") from refused
        if identity.purpose != "access":
            raise Refused(403, "token refused: a sign-in link's token only opens /signin")
        return identity

    def valid_until(self, identity: Identity) -> float:
        return identity.expires_at + self.verifier.leeway_seconds

    async def ensure_user(self, identity: Identity) -> None:
        """Create or refresh the user's row once per process and set of claims."""
        key = identity.user_uuid
        claims = (identity.name, identity.role, identity.cohort)
        if self._known.get(key) == claims:
            return
        await self.store.upsert_user(
            key, identity.user_id, identity.name, identity.role, identity.cohort
        )
        if len(self._known) >= MAX_KNOWN_USERS:
            self._known.clear()
        self._known[key] = claims

    async def role_in(self, identity: Identity, room_id: str, *, create: bool) -> RoomRole:
        """The person's role in the room; Refused when they may not enter.

        With ``create``, a room that does not exist yet is created, owned by
        this person (how a y-websocket client opens a new room); without it,
        such a room is a 404.
        """
        if identity.room is not None and identity.room != room_id:
            raise Refused(403, f"token refused: it is for room {identity.room!r}, not {room_id!r}")
        person = person_of(identity)
        try:
            await self.ensure_user(identity)
            standing = await self.store.room_standing(room_id, person.user_id)
            if standing is None:
                if not create:
                    raise Refused(404, f"no room {room_id!r}")
                created = await self.store.create_room(
                    room_id, person.user_id, cohort=identity.cohort
                )
                if created is not None:
                    return RoomRole.OWNER  # its creator
                # someone else created it in between: their rules decide
                standing = await self.store.room_standing(room_id, person.user_id)
                if standing is None:  # and deleted it again: nothing to enter
                    raise Refused(404, f"no room {room_id!r}")
        except StoreUnavailable as exc:
            raise Refused(503, f"cannot check access right now: {exc}") from exc
        role = room_role(person, standing)
        if role is RoomRole.NONE:
            raise Refused(403, f"no access to room {room_id!r}: {refusal(person, standing)}")
        return role

    async def role_of(self, person: Person, room_id: str) -> RoomRole:
        """A connected person's role now (after the room's rules changed); NONE if gone."""
        standing = await self.store.room_standing(room_id, person.user_id)
        return RoomRole.NONE if standing is None else room_role(person, standing)

    async def admit(self, token: str | None, room_id: str) -> Admission:
        """Everything the room socket needs to know before it upgrades."""
        identity = await self.identify(token)
        role = await self.role_in(identity, room_id, create=True)
        return Admission(identity, person_of(identity), role, self.valid_until(identity))

    @staticmethod
    def is_staff(identity: Identity) -> bool:
        return identity.role in STAFF_ROLES


def seconds_left(valid_until: float) -> float:
    return max(0.0, valid_until - time.time())
