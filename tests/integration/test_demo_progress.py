"""Self-paced progress through a demo at the real server: own progress, and everyone's for staff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"

INES = {"user_id": "ines", "name": "Ines", "role": "instructor"}
TOM = {"user_id": "tom", "name": "Tom", "role": "teaching_assistant"}
SAM = {"user_id": "sam", "name": "Sam"}
BEA = {"user_id": "bea", "name": "Bea"}


@pytest.fixture
async def published(server, tokens) -> None:
    async with aiohttp.ClientSession(headers=tokens.auth(**INES)) as staff:
        for demo_id, name in (("loops", "python-loops"), ("hello", "hello-recording")):
            path = EXAMPLES / f"{name}.demo.json"
            async with staff.put(f"{server.http}/api/demos/{demo_id}", data=path.read_bytes()) as r:
                assert r.status == 201, await r.text()


async def call(
    server: Any, tokens: Any, who: dict[str, Any], method: str, path: str, **kw: Any
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=tokens.auth(**who)) as s,
        s.request(method, f"{server.http}/api/demos/{path}", **kw) as r,
    ):
        return r.status, await r.json()


async def test_own_progress_keeps_the_furthest_and_completed_sticks(
    server, tokens, published
) -> None:
    status, body = await call(server, tokens, SAM, "GET", "loops/progress")
    assert status == 200
    assert body == {
        "demo": "loops",
        "position": 0.0,
        "step": None,
        "fraction": 0.0,
        "completed": False,
        "updated_at": None,
    }

    report = {"position": 2, "step": "range", "fraction": 0.5}
    status, body = await call(server, tokens, SAM, "PUT", "loops/progress", json=report)
    assert status == 200, body
    assert (body["position"], body["step"], body["fraction"], body["completed"]) == (
        2.0,
        "range",
        0.5,
        False,
    )
    assert body["updated_at"]

    # back to an earlier step to reread it: position is the latest, fraction the furthest
    report = {"position": 1, "step": "run-it", "fraction": 0.25}
    status, body = await call(server, tokens, SAM, "PUT", "loops/progress", json=report)
    assert (body["position"], body["step"], body["fraction"]) == (1.0, "run-it", 0.5)

    report = {"position": 4, "step": "while", "fraction": 1, "completed": True}
    status, body = await call(server, tokens, SAM, "PUT", "loops/progress", json=report)
    assert (body["fraction"], body["completed"]) == (1.0, True)
    # completed never goes back to false, whether said or left out
    for report in (
        {"position": 0, "step": "for-list", "fraction": 0, "completed": False},
        {"position": 0, "fraction": 0.1},
    ):
        status, body = await call(server, tokens, SAM, "PUT", "loops/progress", json=report)
        assert status == 200
        assert (body["completed"], body["fraction"], body["position"]) == (True, 1.0, 0.0)
    assert body["step"] is None  # the latest report named no step

    status, body = await call(server, tokens, SAM, "GET", "loops/progress")
    assert (body["position"], body["step"], body["fraction"], body["completed"]) == (
        0.0,
        None,
        1.0,
        True,
    )
    # progress is each person's own, and per demo
    status, body = await call(server, tokens, BEA, "GET", "loops/progress")
    assert (body["fraction"], body["completed"], body["updated_at"]) == (0.0, False, None)
    status, body = await call(
        server, tokens, SAM, "PUT", "hello/progress", json={"position": 1.25, "fraction": 0.6}
    )
    assert (status, body["demo"], body["position"], body["step"]) == (200, "hello", 1.25, None)
    status, body = await call(server, tokens, SAM, "GET", "loops/progress")
    assert body["fraction"] == 1.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"position": -1, "fraction": 0.5}, "position"),
        ({"position": "2", "fraction": 0.5}, "position"),
        (b'{"position": 1e999, "fraction": 0.5}', "position"),  # JSON for infinity
        ({"fraction": 0.5}, "position"),
        ({"position": 1, "fraction": 1.5}, "fraction"),
        ({"position": 1, "fraction": -0.1}, "fraction"),
        ({"position": 1}, "fraction"),
        ({"position": 1, "fraction": 0.5, "completed": "yes"}, "completed"),
        ({"position": 1, "fraction": 0.5, "step": 3}, "step"),
        ({"position": 1, "fraction": 0.5, "step": ""}, "step"),
        ({"position": 1, "fraction": 0.5, "step": "no-such-step"}, "step"),
        ({"position": 1, "fraction": 0.5, "fractoin": 1}, "fractoin"),
        ([1, 2], "object"),
    ],
)
async def test_bad_reports_are_400_naming_the_field(
    server, tokens, published, body: Any, field: str
) -> None:
    sent = {"data": body} if isinstance(body, bytes) else {"json": body}
    status, answer = await call(server, tokens, SAM, "PUT", "loops/progress", **sent)
    assert status == 400, answer
    assert field in answer["error"], answer
    status, answer = await call(server, tokens, SAM, "GET", "loops/progress")
    assert answer["updated_at"] is None  # nothing stored


async def test_not_json_and_unknown_demos(server, tokens, published) -> None:
    status, body = await call(server, tokens, SAM, "PUT", "loops/progress", data=b"{nope")
    assert status == 400 and "not JSON" in body["error"]
    status, body = await call(server, tokens, SAM, "PUT", "loops/progress", data=b"x" * 5000)
    assert status == 413
    report = {"position": 1, "fraction": 0.5}
    for method, path in (
        ("PUT", "nope/progress"),
        ("GET", "nope/progress"),
    ):
        status, body = await call(server, tokens, SAM, method, path, json=report)
        assert status == 404 and "no demo 'nope'" in body["error"]
    status, body = await call(server, tokens, INES, "GET", "nope/progress/all")
    assert status == 404


async def test_staff_see_everyones_progress_and_students_are_refused(
    server, tokens, published
) -> None:
    for who, fraction, completed in ((SAM, 0.5, False), (BEA, 1.0, True)):
        report = {"position": 2, "step": "range", "fraction": fraction, "completed": completed}
        status, _ = await call(server, tokens, who, "PUT", "loops/progress", json=report)
        assert status == 200
    for staff in (INES, TOM):
        status, body = await call(server, tokens, staff, "GET", "loops/progress/all")
        assert status == 200, body
        assert body["demo"] == "loops"
        rows = {(p["username"], p["name"], p["fraction"], p["completed"]) for p in body["progress"]}
        assert rows == {("sam", "Sam", 0.5, False), ("bea", "Bea", 1.0, True)}
        assert all(p["user"] and p["step"] == "range" for p in body["progress"])
        # most recently active first
        assert [p["username"] for p in body["progress"]] == ["bea", "sam"]
    status, body = await call(server, tokens, SAM, "GET", "loops/progress/all")
    assert status == 403 and "course staff" in body["error"]
    status, body = await call(server, tokens, INES, "GET", "hello/progress/all")
    assert (status, body["progress"]) == (200, [])
