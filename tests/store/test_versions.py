"""Named versions: create, list newest first, get with state, scoped to their room."""

from __future__ import annotations

import uuid

import pytest

from store import Store, Version, VersionInfo

from .ydocs import Writer, files_of, rebuild


async def test_versions_round_trip(store: Store) -> None:
    writer = Writer("main.py")
    await store.append_updates([("r", writer.edit()) for _ in range(3)])
    first_files = files_of(writer.doc)
    first = await store.create_version("r", "before lunch", writer.doc.get_update(), 3)
    await store.append_updates([("r", writer.edit()) for _ in range(2)])
    ann = uuid.uuid4()
    second = await store.create_version(
        "r", "  after lunch  ", writer.doc.get_update(), 5, created_by=ann
    )

    assert isinstance(second, Version)
    assert (second.name, second.upto_seq, second.created_by) == ("after lunch", 5, ann)
    assert second.id > first.id and second.created_at >= first.created_at

    listed = await store.list_versions("r")
    assert [v.id for v in listed] == [second.id, first.id]
    assert all(type(v) is VersionInfo for v in listed)
    assert listed[1] == VersionInfo(
        first.id, "r", "before lunch", 3, first.created_at, created_by=None
    )

    got = await store.get_version("r", first.id)
    assert got == first
    assert got is not None and files_of(rebuild([got.state])) == first_files


async def test_versions_belong_to_their_room(store: Store) -> None:
    version = await store.create_version("a", "v", b"\x00\x00", 0)
    assert await store.get_version("b", version.id) is None
    assert await store.get_version("a", version.id + 1000) is None
    assert await store.list_versions("b") == []


async def test_saving_a_version_of_an_unstored_room_creates_it(store: Store) -> None:
    assert not await store.room_exists("new")
    await store.create_version("new", "empty", b"\x00\x00", 0)
    assert await store.room_exists("new")
    # and the log of the room starts at 1 all the same
    assert await store.append_updates([("new", b"x")]) == [1]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_version_names_are_checked(store: Store, name: str) -> None:
    with pytest.raises(ValueError, match="1 to 200 characters"):
        await store.create_version("r", name, b"", 0)
