"""The room-role rules, one rule per test."""

from __future__ import annotations

import uuid

import pytest

from rooms import Person, RoomRole, can_control_demo, can_edit, can_manage, can_run, room_role
from store import RoomStanding

ME = uuid.uuid4()
OTHER = uuid.uuid4()


def person(role: str = "student", cohort: str | None = None) -> Person:
    return Person(user_id=ME, name="Ada", role=role, cohort=cohort)


def standing(**over: object) -> RoomStanding:
    base: dict[str, object] = {"owner": OTHER, "visibility": "private", "cohort": None}
    base.update(over)
    return RoomStanding(**base)  # type: ignore[arg-type]


def test_private_room_of_someone_else_is_closed_to_a_student():
    assert room_role(person(), standing()) is RoomRole.NONE


def test_owner_and_admin_own_the_room():
    assert room_role(person(), standing(owner=ME)) is RoomRole.OWNER
    assert room_role(person("admin"), standing()) is RoomRole.OWNER


@pytest.mark.parametrize("member", ["owner", "editor", "viewer"])
def test_member_role_is_the_role(member):
    assert room_role(person(), standing(member_role=member)).label == member


def test_staff_edit_every_room_and_keep_a_stronger_member_role():
    assert room_role(person("instructor"), standing()) is RoomRole.EDITOR
    assert room_role(person("teaching_assistant"), standing()) is RoomRole.EDITOR
    assert room_role(person("instructor"), standing(member_role="owner")) is RoomRole.OWNER


def test_cohort_room_opens_to_its_cohort_only():
    rules = standing(visibility="cohort", cohort="a")
    assert room_role(person(cohort="a"), rules) is RoomRole.EDITOR
    assert room_role(person(cohort="b"), rules) is RoomRole.NONE
    assert room_role(person(), rules) is RoomRole.NONE


def test_public_room_lets_everyone_watch_and_members_keep_their_role():
    assert room_role(person(), standing(visibility="public")) is RoomRole.VIEWER
    assert (
        room_role(person(), standing(visibility="public", member_role="editor")) is RoomRole.EDITOR
    )


def test_a_cohort_stored_on_a_private_room_opens_nothing():
    assert room_role(person(cohort="a"), standing(cohort="a")) is RoomRole.NONE


def test_what_each_role_may_do():
    assert not can_edit(RoomRole.VIEWER) and can_edit(RoomRole.EDITOR)
    assert not can_run(RoomRole.VIEWER) and can_run(RoomRole.EDITOR)
    assert not can_control_demo(person(), RoomRole.OWNER)  # a student owner is no presenter
    assert can_control_demo(person("teaching_assistant"), RoomRole.EDITOR)
    assert not can_control_demo(person("instructor"), RoomRole.VIEWER)
    assert can_manage(person(), RoomRole.OWNER) and not can_manage(person(), RoomRole.EDITOR)
    assert can_manage(person("instructor"), RoomRole.EDITOR)
    assert not can_manage(person("teaching_assistant"), RoomRole.EDITOR)


def test_member_roles_parse_and_unknown_ones_are_refused():
    assert RoomRole.parse("viewer") is RoomRole.VIEWER
    for bad in ("none", "root", ""):
        with pytest.raises(ValueError):
            RoomRole.parse(bad)
