"""The page's clock sync and playhead (web/src/clock.js, web/src/follower.js) compute exactly
what demos.clock and demos.follower compute, on the same inputs (run with Node)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from demos.clock import ClockSync
from demos.follower import Follower
from tests.conftest import ROOT, need

SCRIPT = """
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
const src = (name) => pathToFileURL(process.argv[1] + '/web/src/' + name).href
const { ClockSync } = await import(src('clock.js'))
const { Follower } = await import(src('follower.js'))
const { clock, follower } = JSON.parse(readFileSync(0, 'utf8'))
const sync = new ClockSync({ send: () => true, now: () => 0 })
const offsets = clock.map(([t0, server, t1]) => { sync.add(t0, server, t1); return sync.offset() })
const f = new Follower()
const shown = []
for (const op of follower) {
  if (op[0] === 'update') f.update(op[1])
  else shown.push([f.tick(op[1], op[2]), f.seeks])
}
process.stdout.write(JSON.stringify({ offsets, shown }))
"""


def scenario(seed: int) -> dict[str, list]:
    rnd = random.Random(seed)
    clock = []
    t = 1_000_000.0
    for _ in range(40):
        delay = rnd.choice([2.0, 5.0, 5.0, 40.0, 200.0]) + rnd.random()
        t0 = t
        t1 = t0 + delay
        server = t0 + 12_345.0 + delay * rnd.random() + rnd.gauss(0, 3)
        clock.append([t0, server, t1])
        t = t1 + rnd.uniform(10, 2000)
    ops: list = []
    local = 5_000.0
    offset = 777.0
    state = {"demo": "d", "position": 0.0, "playing": False, "rate": 1.0, "at": local + offset,
             "kind": "recording", "duration": 60.0, "mode": "live"}  # fmt: skip
    ops.append(["update", dict(state)])
    for i in range(600):
        local += rnd.choice([16.7, 16.7, 33.3, 250.0])
        drift = rnd.gauss(0, 8)  # the clock estimate moves a little...
        if i % 97 == 50:
            offset += rnd.choice([-400.0, 400.0])  # ...or a lot: the playhead must seek
        server = local + offset + drift
        if i % 60 == 10:  # a command, effective a little later
            where = state["position"]
            if state["playing"]:
                where = min(where + (server - state["at"]) / 1000 * state["rate"], 60.0)
            action = rnd.choice(["play", "pause", "seek", "rate"])
            state = dict(state, position=where, at=server + 150.0)
            if action == "play":
                state["playing"] = True
            elif action == "pause":
                state["playing"] = False
            elif action == "seek":
                state["position"] = rnd.uniform(0, 60)
            else:
                state["rate"] = rnd.choice([0.5, 1.0, 1.5, 2.0])
            ops.append(["update", dict(state)])
        ops.append(["tick", local, server])
    return {"clock": clock, "follower": ops}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_js_mirrors_python(seed: int) -> None:
    node = shutil.which("node")
    need(node is not None, "Node.js is not installed")
    assert node is not None
    data = scenario(seed)
    out = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, str(ROOT)],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    js = json.loads(out.stdout)

    sync = ClockSync()
    offsets = []
    for t0, server, t1 in data["clock"]:
        sync.add(t0, server, t1)
        offsets.append(sync.offset)
    assert js["offsets"] == pytest.approx(offsets, abs=1e-9)

    follower = Follower()
    shown = []
    for op in data["follower"]:
        if op[0] == "update":
            follower.update(op[1])
        else:
            shown.append([follower.tick(op[1], op[2]), follower.seeks])
    assert [s for s, _ in js["shown"]] == pytest.approx([s for s, _ in shown], abs=1e-9)
    assert [n for _, n in js["shown"]] == [n for _, n in shown]
    assert shown[-1][1] > 0  # the scenario made the playhead seek
