"""Who may do what in a room: pure rules, applied by the server to every message.

A person's room role comes from several places, and the strongest wins:

- ``admin`` (a global role) is an owner of every room;
- the room's owner, and members added through the API with a room role;
- course staff (``instructor``, ``teaching_assistant``) are editors of every
  room: they help students in their own rooms;
- a room open to a cohort makes the people of that cohort editors;
- a public-read room lets everyone else in as a viewer.

Anyone below ``editor`` receives the document and awareness but every change
they send is refused; demo control needs course staff who can edit the room;
managing a room (visibility, members) needs its owner, an instructor or an admin.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

GLOBAL_ROLES = ("student", "instructor", "teaching_assistant", "admin")
STAFF_ROLES = frozenset({"instructor", "teaching_assistant", "admin"})
VISIBILITIES = ("private", "cohort", "public")


class RoomRole(IntEnum):
    NONE = 0
    VIEWER = 1
    EDITOR = 2
    OWNER = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def with_article(self) -> str:
        """ "an owner", "an editor", "a viewer": for messages people read."""
        return a_or_an(self.label)

    @classmethod
    def parse(cls, text: str) -> RoomRole:
        """A member role as the API and the database spell it."""
        try:
            role = cls[text.upper()]
        except KeyError:
            role = cls.NONE
        if role is cls.NONE:
            raise ValueError(f"room role must be one of {', '.join(MEMBER_ROLES)}")
        return role


MEMBER_ROLES = ("owner", "editor", "viewer")


def a_or_an(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


class RoomAccess(Protocol):
    """What decides one person's role in a room, as stored (``store.RoomStanding``)."""

    @property
    def owner(self) -> uuid.UUID | None: ...
    @property
    def visibility(self) -> str: ...
    @property
    def cohort(self) -> str | None: ...
    #: The person's member role in this room, if they were added as a member.
    @property
    def member_role(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Person:
    """The person a verified token speaks for, as far as rooms are concerned."""

    user_id: uuid.UUID
    name: str
    role: str
    cohort: str | None = None


def room_role(person: Person, access: RoomAccess) -> RoomRole:
    """The strongest role any rule gives ``person`` in the room."""
    if person.role == "admin" or access.owner == person.user_id:
        return RoomRole.OWNER
    best = RoomRole.NONE
    if access.member_role is not None:
        best = RoomRole.parse(access.member_role)
    if person.role in STAFF_ROLES:
        best = max(best, RoomRole.EDITOR)
    if access.visibility == "cohort" and access.cohort and access.cohort == person.cohort:
        best = max(best, RoomRole.EDITOR)
    if access.visibility == "public":
        best = max(best, RoomRole.VIEWER)
    return best


def refusal(person: Person, access: RoomAccess) -> str:
    """Why ``person`` may not enter: said in the 403 they get."""
    if access.visibility == "cohort":
        if person.cohort:
            return f"this room is open to cohort {access.cohort!r}, not {person.cohort!r}"
        return f"this room is open to cohort {access.cohort!r} and your token names no cohort"
    return "this room is private: ask its owner to add you as a member"


def can_edit(role: RoomRole) -> bool:
    return role >= RoomRole.EDITOR


def can_run(role: RoomRole) -> bool:
    """Running a room's code uses the room's files and everyone sees it: editors only."""
    return role >= RoomRole.EDITOR


def can_control_demo(person: Person, role: RoomRole) -> bool:
    return person.role in STAFF_ROLES and role >= RoomRole.EDITOR


def can_manage(person: Person, role: RoomRole) -> bool:
    """Change visibility and members: the owner, an instructor or an admin."""
    return role >= RoomRole.OWNER or person.role in ("instructor", "admin")
