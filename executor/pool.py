"""The containers of one executor: warm ones, busy ones, and ones kept for a user.

All bookkeeping happens on the event loop (no locks). A container belongs to
at most one owner for its whole life: fresh (warm) containers go to whoever
needs one, a used container is only ever given back to the owner who used it,
and it is destroyed after a limit breach, after ``runs_per_container`` runs,
after ``idle_seconds`` unused, or when the pool needs room for another owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from .cgroups import Cgroup
from .conn import AgentConn, Frames
from .engine import Shape
from .job import ExecutorError

if TYPE_CHECKING:
    from .executor import Run

log = logging.getLogger("opencode_live.executor")

State = Literal["starting", "warm", "busy", "idle", "gone"]
#: Warm containers started at once in the background.
REFILL_PARALLEL = 2
#: How long a run waits for a warm container that is being started when the pool is full.
WAIT_FOR_WARM = 30.0


class Box:
    """One container and its agent."""

    def __init__(
        self,
        cid: str,
        name: str,
        shape: Shape,
        cgroup: Cgroup | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.id = cid
        self.name = name
        self.shape = shape
        self.cgroup = cgroup
        self.conn: AgentConn | None = None
        self.owner: str | None = None
        self.runs = 0
        self.state: State = "starting"
        self.last_used = loop.time()
        self.run: Run | None = None
        self.hello: asyncio.Future[bytes] = loop.create_future()
        self.on_gone: Callable[[Box], None] | None = None
        self.gone_reason = ""

    @property
    def short(self) -> str:
        return self.id[:12]

    def on_frames(self, frames: Frames) -> None:
        batch: Frames = []
        for kind, payload in frames:
            if kind == b"H":
                if not self.hello.done():
                    self.hello.set_result(payload)
            else:
                batch.append((kind, payload))
        if batch and self.run is not None:
            self.run._frames(batch)

    def on_closed(self, reason: str, stderr_tail: bytes) -> None:
        if stderr_tail:
            log.info(
                "agent stderr",
                extra={"container": self.short, "stderr": stderr_tail.decode("utf-8", "replace")},
            )
        was = self.state
        self.state = "gone"
        self.gone_reason = reason
        if not self.hello.done():
            self.hello.set_exception(
                ExecutorError(f"the container's agent did not start: {reason}")
            )
        if self.run is not None:
            self.run._lost(reason)
        if self.on_gone is not None and was != "gone":
            self.on_gone(self)


class Pool:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        default_shape: Shape,
        warm: int,
        max_containers: int,
        create: Callable[[Shape], Awaitable[Box]],
        destroy: Callable[[Box], None],
    ) -> None:
        self._loop = loop
        self.default_shape = default_shape
        self.warm_target = warm
        self.max = max_containers
        self._create = create
        self._destroy = destroy
        self.boxes: dict[str, Box] = {}
        self.warm: dict[Shape, deque[Box]] = {}
        self.idle: dict[str, list[Box]] = {}
        self.creating = 0
        self.warm_creating = 0
        self._waiters: deque[asyncio.Future[Box]] = deque()
        self.enabled = False
        self._kick = asyncio.Event()
        self._failures = 0
        self._refill_task: asyncio.Task[None] | None = None

    # -- counts -----------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.boxes) + self.creating

    def warm_count(self, shape: Shape | None = None) -> int:
        return len(self.warm.get(shape or self.default_shape, ()))

    def counts(self) -> dict[str, int]:
        states = [b.state for b in self.boxes.values()]
        return {
            "warm": states.count("warm"),
            "busy": states.count("busy"),
            "idle": states.count("idle"),
            "starting": self.creating,
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._refill_task is None:
            self._refill_task = self._loop.create_task(self._refill_loop(), name="executor-refill")

    async def stop(self) -> None:
        self.enabled = False
        if self._refill_task is not None:
            self._refill_task.cancel()
            try:
                await self._refill_task
            except asyncio.CancelledError:
                pass
            self._refill_task = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(ExecutorError("the executor is closing"))

    def kick(self) -> None:
        self._kick.set()

    def enable(self) -> None:
        self.enabled = True
        self._failures = 0
        self.kick()

    def disable(self) -> None:
        """The engine went away: forget the containers no run is using."""
        self.enabled = False
        for box in list(self.boxes.values()):
            if box.state in ("warm", "idle", "starting"):
                self.drop(box)

    # -- taking and giving back -------------------------------------------------------------

    def _register(self, box: Box) -> None:
        self.boxes[box.id] = box
        box.on_gone = self._on_gone

    def _on_gone(self, box: Box) -> None:
        """The container died under us (agent gone): forget it and remove it."""
        if self.boxes.get(box.id) is box and box.run is None:
            self.drop(box)

    def _take(self, owner: str, shape: Shape) -> Box | None:
        kept = self.idle.get(owner)
        if kept:
            for i in range(len(kept) - 1, -1, -1):
                if kept[i].shape == shape:
                    box = kept.pop(i)
                    if not kept:
                        del self.idle[owner]
                    return box
        warm = self.warm.get(shape)
        while warm:
            box = warm.popleft()
            if box.state == "warm":
                return box
        return None

    def _victim(self) -> Box | None:
        """The container to destroy to make room: the longest-unused kept one, else a warm
        one of a shape nobody asked for."""
        idle = [b for boxes in self.idle.values() for b in boxes]
        if idle:
            return min(idle, key=lambda b: b.last_used)
        for shape, boxes in self.warm.items():
            if shape != self.default_shape and boxes:
                return boxes[0]
        return None

    async def acquire(self, owner: str, shape: Shape) -> Box:
        """A ready container for ``owner``: kept, warm or new. Raises ``ExecutorError``."""
        box = self._take(owner, shape)
        if box is None and self.total >= self.max:
            victim = self._victim()
            if victim is not None:
                self.drop(victim)
            elif self.warm_creating and shape == self.default_shape:
                box = await self._wait_for_warm()
            else:
                raise ExecutorError(
                    f"all {self.max} run containers are busy; try again in a moment"
                )
        if box is None:
            box = await self._new(shape)
        box.owner = owner
        box.state = "busy"
        box.last_used = self._loop.time()
        self.kick()
        return box

    async def _wait_for_warm(self) -> Box:
        fut: asyncio.Future[Box] = self._loop.create_future()
        self._waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, WAIT_FOR_WARM)
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._give_warm(fut.result())  # handed over as we were cancelled
            raise
        except TimeoutError:
            raise ExecutorError(
                f"all {self.max} run containers are busy; try again in a moment"
            ) from None
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    async def _new(self, shape: Shape) -> Box:
        self.creating += 1
        try:
            box = await self._create(shape)
        finally:
            self.creating -= 1
        if not self.enabled:
            self._destroy(box)
            raise ExecutorError(
                "runs are unavailable (the executor is closing or the engine is down)"
            )
        self._register(box)
        return box

    def keep(self, box: Box) -> None:
        """Give a used, clean container back: kept for its owner only."""
        if box.state == "gone" or self.boxes.get(box.id) is not box or not self.enabled:
            self.drop(box)
            return
        box.state = "idle"
        box.last_used = self._loop.time()
        assert box.owner is not None
        self.idle.setdefault(box.owner, []).append(box)

    def drop(self, box: Box) -> None:
        """Forget a container and destroy it (in the background)."""
        if self.boxes.get(box.id) is box:
            del self.boxes[box.id]
        if box.owner is not None and box in self.idle.get(box.owner, ()):
            self.idle[box.owner].remove(box)
            if not self.idle[box.owner]:
                del self.idle[box.owner]
        warm = self.warm.get(box.shape)
        if warm is not None and box in warm:
            warm.remove(box)
        box.state = "gone"
        self._destroy(box)
        self.kick()

    def expire(self, idle_seconds: float) -> None:
        now = self._loop.time()
        for boxes in list(self.idle.values()):
            for box in list(boxes):
                if now - box.last_used > idle_seconds:
                    self.drop(box)

    def all_boxes(self) -> list[Box]:
        return list(self.boxes.values())

    # -- keeping warm containers ready ------------------------------------------------------

    async def _refill_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            while self.enabled:
                deficit = self.warm_target - self.warm_count() - self.warm_creating
                if deficit <= 0 or self.total >= self.max or self.warm_creating >= REFILL_PARALLEL:
                    break
                self.warm_creating += 1
                self.creating += 1
                self._loop.create_task(self._make_warm(), name="executor-warm")
            if self._failures:
                # the engine fails to start containers: do not retry in a tight loop
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(self._failures, 6)))
                self.kick()

    async def _make_warm(self) -> None:
        box: Box | None = None
        try:
            box = await self._create(self.default_shape)
        except Exception as exc:
            self._failures += 1
            log.warning("warm container failed to start", extra={"error": str(exc)})
        finally:
            self.warm_creating -= 1
            self.creating -= 1
        if box is None:
            self.kick()
            return
        self._failures = 0
        if not self.enabled:
            self._destroy(box)
            return
        self._register(box)
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                box.state = "busy"
                fut.set_result(box)
                self.kick()
                return
        self._give_warm(box)

    def _give_warm(self, box: Box) -> None:
        box.state = "warm"
        self.warm.setdefault(box.shape, deque()).append(box)
        self.kick()
