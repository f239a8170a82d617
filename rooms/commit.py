"""Group commit: every room's updates go to the durable log in shared transactions.

An update is forwarded to the other clients only after the transaction that
holds it has committed, so nothing anyone has seen can be lost by a crash.
One commit is in flight at a time: updates that arrive meanwhile form the next
batch, so a quiet room pays one round trip and a busy server amortises it over
hundreds of updates. Commits are in submission order, so each room's updates
are applied and forwarded in the order they arrived.

When the database is unreachable, the batch stays at the head of the queue and
is retried with back-off; rooms are told (``on_outage``/``on_recovery``) so
they can tell their clients, and nothing is dropped: once the database is back
every queued update is stored and forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from . import metrics

log = logging.getLogger("opencode_live.rooms")

OnCommit = Callable[[int], None]


class UpdateLog(Protocol):
    """What group commit needs of the store (``store.Store`` provides it)."""

    def append_updates(
        self, batch: list[tuple[str, bytes]], authors: list[uuid.UUID | None] | None = None
    ) -> Awaitable[list[int]]: ...


@dataclass(slots=True)
class _Entry:
    room_id: str
    update: bytes
    on_commit: OnCommit
    author: uuid.UUID | None


class GroupCommit:
    def __init__(
        self,
        log_store: UpdateLog,
        *,
        max_batch: int = 1000,
        max_batch_bytes: int = 8 * 1024 * 1024,
        max_queued_bytes: int = 256 * 1024 * 1024,
        delay: float = 0.0,
        on_outage: Callable[[Exception], None] | None = None,
        on_recovery: Callable[[], None] | None = None,
    ) -> None:
        self._store = log_store
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._max_queued_bytes = max_queued_bytes
        self._delay = delay
        self._on_outage = on_outage
        self._on_recovery = on_recovery
        self._queue: list[_Entry] = []
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.healthy = True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(
        self,
        room_id: str,
        update: bytes,
        on_commit: OnCommit,
        author: uuid.UUID | None = None,
    ) -> bool:
        """Queue an update by ``author``; ``on_commit(seq)`` runs once it is durable.

        False when the queue is full (the database has been away too long):
        the caller refuses the update instead of growing memory without end.
        """
        if self._queued_bytes + len(update) > self._max_queued_bytes:
            metrics.ERRORS.labels(kind="commit_queue_full").inc()
            return False
        self._queue.append(_Entry(room_id, update, on_commit, author))
        self._queued_bytes += len(update)
        self._idle.clear()
        self._wakeup.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def drain(self, timeout: float) -> bool:
        """Wait until everything queued so far is committed; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued (bounded), then stop."""
        if not await self.drain(timeout):
            log.error("shutdown: updates not committed", extra={"queued": len(self._queue)})
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
            batch = self._take_batch()
            started = time.perf_counter()
            try:
                seqs = await self._store.append_updates(
                    [(e.room_id, e.update) for e in batch], authors=[e.author for e in batch]
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # StoreUnavailable, or a bug of ours: retry, never drop
                metrics.ERRORS.labels(kind="commit_failed").inc()
                if self.healthy:
                    self.healthy = False
                    log.error(
                        "commit failed; retrying", extra={"error": str(exc), "batch": len(batch)}
                    )
                    if self._on_outage is not None:
                        self._on_outage(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.COMMIT_BATCH.observe(len(batch))
            del self._queue[: len(batch)]
            self._queued_bytes -= sum(len(e.update) for e in batch)
            if not self.healthy:
                self.healthy = True
                log.info("commits resumed")
                if self._on_recovery is not None:
                    self._on_recovery()
            for entry, seq in zip(batch, seqs, strict=True):
                try:
                    entry.on_commit(seq)
                except Exception:
                    metrics.ERRORS.labels(kind="after_commit").inc()
                    log.exception("after-commit step failed", extra={"room": entry.room_id})

    def _take_batch(self) -> list[_Entry]:
        size = 0
        count = 0
        for entry in self._queue:
            if count and (
                count >= self._max_batch or size + len(entry.update) > self._max_batch_bytes
            ):
                break
            size += len(entry.update)
            count += 1
        return self._queue[:count]
