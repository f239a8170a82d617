"""The demo library through the real API: staff publish validated demos, everyone reads."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

EXAMPLES = Path(__file__).resolve().parents[2] / "demos" / "examples"


async def test_staff_publish_demos_and_everyone_signed_in_reads_them(server, tokens):
    loops = (EXAMPLES / "python-loops.demo.json").read_bytes()
    async with aiohttp.ClientSession(headers=tokens.auth(role="instructor", user_id="ines")) as s:
        async with s.put(f"{server.http}/api/demos/loops", data=loops) as r:
            assert r.status == 201
            made = await r.json()
        assert made["kind"] == "walkthrough" and made["created"] is True
        async with s.put(f"{server.http}/api/demos/loops", data=loops) as r:
            assert r.status == 200 and (await r.json())["created"] is False
    async with aiohttp.ClientSession(headers=tokens.auth(user_id="sam")) as student:
        async with student.get(f"{server.http}/api/demos") as r:
            listed = (await r.json())["demos"]
        assert [(d["id"], d["kind"]) for d in listed] == [("loops", "walkthrough")]
        async with student.get(f"{server.http}/api/demos/loops") as r:
            stored = await r.json()
        assert stored == json.loads(loops)  # the same demo, whatever the key order
        # a student may read, not publish or remove
        async with student.put(f"{server.http}/api/demos/mine", data=loops) as r:
            assert r.status == 403
        async with student.delete(f"{server.http}/api/demos/loops") as r:
            assert r.status == 403
        async with student.get(f"{server.http}/api/demos/nope") as r:
            assert r.status == 404


async def test_a_demo_that_does_not_validate_is_refused_with_every_problem(server, tokens):
    bad = {
        "format": "opencode-live/demo",
        "version": 1,
        "title": "Broken",
        "files": {"main.py": "print(1)\n"},
        "steps": [
            {"id": "a", "title": "A", "highlights": [{"file": "mian.py", "pattern": "print"}]},
            {"id": "a", "title": "B", "branches": [{"label": "go", "to": "zz"}]},
        ],
    }
    async with aiohttp.ClientSession(headers=tokens.auth(role="teaching_assistant")) as s:
        async with s.put(f"{server.http}/api/demos/broken", json=bad) as r:
            assert r.status == 400
            body = await r.json()
        problems = body["problems"]
        assert any('highlights[0].file: no file "mian.py"' in p for p in problems)
        assert any('duplicate step id "a"' in p for p in problems)
        assert any('branches[0].to: no step with id "zz"' in p for p in problems)
        async with s.put(f"{server.http}/api/demos/junk", data=b"{not json") as r:
            assert r.status == 400 and "not valid JSON" in (await r.json())["problems"][0]
        async with s.put(f"{server.http}/api/demos/..", data=b"{}") as r:
            assert r.status in (400, 404)
        async with s.get(f"{server.http}/api/demos") as r:
            assert (await r.json())["demos"] == []  # nothing half-stored
