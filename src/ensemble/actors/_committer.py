"""Group commit: many turns of many actors made durable in one transaction.

Turns hand their :class:`~ensemble.persistence.actor_store.Write` to the
committer and go on with their next messages; effects wait at the output gate
until the write's callback says it is durable.  One transaction runs at a
time per committer, and whatever queued up while it ran becomes the next
batch, so the batch size grows with load and the cost of an fsync is shared.

Order: a committer keeps submission order, and an actor always uses the same
committer, so an actor's writes commit in offset order.  If a batch fails as a
whole, its writes are retried one by one so a single bad write (a fenced,
stale activation) fails alone; writes of an actor that already failed are
not attempted, which is what keeps the log free of gaps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ensemble.errors import EnsembleError, Unavailable
from ensemble.log import get_logger
from ensemble.persistence.actor_store import Write, commit_writes
from ensemble.persistence.database import Database

__all__ = ["GroupCommitter", "PendingWrite"]

log = get_logger("ensemble.actors.commit")


class WriteOwner(Protocol):
    broken: bool

    def write_done(self, pending: "PendingWrite", error: EnsembleError | None) -> None: ...


@dataclass(slots=True)
class PendingWrite:
    """A write plus what its owner needs to hear back (no closure per write)."""

    write: Write
    owner: WriteOwner
    seq: int
    upto: int
    submitted_at: float

    def is_abandoned(self) -> bool:
        return self.owner.broken

    def on_done(self, error: EnsembleError | None) -> None:
        self.owner.write_done(self, error)


class GroupCommitter:
    def __init__(self, db: Database, *, max_batch: int = 2000, queue_size: int = 20_000) -> None:
        self._db = db
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[PendingWrite](queue_size)
        self.batches = 0
        self.writes = 0
        self.events = 0
        self.last_commit_ms = 0.0
        self.last_batch_size = 0

    def try_submit(self, pending: PendingWrite) -> bool:
        """Queue a write without waiting; False when the queue is full."""
        try:
            self._send.send_nowait(pending)
        except trio.WouldBlock:
            return False
        return True

    async def submit(self, pending: PendingWrite) -> None:
        """Queue a write, waiting (backpressure) while the queue is full."""
        await self._send.send(pending)

    def close(self) -> None:
        self._send.close()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._receive:
            while True:
                try:
                    first = await self._receive.receive()
                except trio.EndOfChannel:
                    return
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._commit(batch)

    async def _commit(self, batch: list[PendingWrite]) -> None:
        live = []
        for p in batch:
            if p.is_abandoned():
                p.on_done(Unavailable("actor was reset before this write"))
            else:
                live.append(p)
        if not live:
            return
        started = time.perf_counter()
        try:
            # Shielded: a write whose outcome we never learn would leave the
            # actor unable to tell which of its events are durable.
            with trio.CancelScope(shield=True):
                await self._db.run(commit_writes, [p.write for p in live])
        except EnsembleError as exc:
            if len(live) == 1:
                live[0].on_done(exc)
                return
            log.warning("group_commit_failed_retrying_singly", error=exc.message, writes=len(live))
            for p in live:
                if p.is_abandoned():
                    p.on_done(Unavailable("actor was reset before this write"))
                    continue
                try:
                    with trio.CancelScope(shield=True):
                        await self._db.run(commit_writes, [p.write])
                except EnsembleError as single:
                    p.on_done(single)
                else:
                    p.on_done(None)
            return
        self.last_commit_ms = (time.perf_counter() - started) * 1000
        self.batches += 1
        self.writes += len(live)
        self.last_batch_size = len(live)
        for p in live:
            self.events += len(p.write.events)
            p.on_done(None)

    def statistics(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "writes": self.writes,
            "events": self.events,
            "last_commit_ms": round(self.last_commit_ms, 3),
            "last_batch_size": self.last_batch_size,
            "queued": self._receive.statistics().current_buffer_used,
        }
