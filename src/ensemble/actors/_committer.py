"""Group commit: many turns of many actors made durable in one transaction.

Turns hand their :class:`~ensemble.persistence.actor_store.Write` to the
committer and go on with their next messages; effects wait at the output gate
until the write's callback says it is durable.  One transaction runs at a
time per committer, and whatever queued up while it ran becomes the next
batch, so the batch size grows with load and the cost of an fsync is shared.

Cost of one batch: one bridge crossing and one round trip on a connection
the committer keeps (no pool acquire, no reset): without projections the
whole batch is a single statement in its own implicit transaction
(``actor_store.commit_writes``), so its commit is one WAL flush.

Order: a committer keeps submission order, and an actor always uses the same
committer, so an actor's writes commit in offset order.  Two tasks: one
commits batches (one transaction at a time), the other releases each
committed batch's effects (the owners' ``write_done``, where broadcasts are
written to sockets), in the same order.  So the next batch's commit is
already on its way to Postgres while the previous batch's broadcasts go out,
and a message never waits for someone else's broadcast sweep before its own
commit starts.

Failure: if a batch fails as a whole, its writes are retried one by one so a
single bad write (a fenced, stale activation) fails alone; later writes of
an actor that failed are not attempted (``_failing`` covers the time until
the release loop has told it and it is ``broken``), which is what keeps the
log free of gaps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ensemble.errors import EnsembleError, Unavailable
from ensemble.log import get_logger
from ensemble.persistence.actor_store import Write, commit_writes
from ensemble.persistence.database import Database, ReservedConnection

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

    def on_done(self, error: EnsembleError | None) -> None:
        self.owner.write_done(self, error)


class GroupCommitter:
    def __init__(self, db: Database, *, max_batch: int = 2000, queue_size: int = 20_000) -> None:
        self._db = db
        # One connection kept for commits: no pool acquire and no reset
        # round trip per batch (see Database.reserve).  A pool of one
        # cannot spare it (activations would wait for it forever).
        self._conn: ReservedConnection | Database = db.reserve() if db.pool.get_max_size() >= 2 else db
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[PendingWrite](queue_size)
        # Committed (or failed) batches on their way to the release loop.
        self._release_send, self._release_receive = trio.open_memory_channel[
            list[tuple[PendingWrite, EnsembleError | None]]
        ](16)
        # Owners with a failed write the release loop has not told yet.
        self._failing: set[WriteOwner] = set()
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

    async def aclose(self) -> None:
        """Give the commit connection back to the pool (after ``run`` has stopped)."""
        if isinstance(self._conn, ReservedConnection):
            with trio.CancelScope(shield=True):
                await self._conn.aclose()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._release_loop)
            task_status.started()
            try:
                await self._commit_loop()
            finally:
                self._release_send.close()

    async def _commit_loop(self) -> None:
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
                outcome = await self._commit(batch)
                del batch  # hold no finished writes (nor their actors) while idle
                try:
                    # No checkpoint here: if more writes are queued, their
                    # commit starts before this batch's effects are released.
                    self._release_send.send_nowait(outcome)
                except trio.WouldBlock:
                    await self._release_send.send(outcome)
                del outcome

    async def _release_loop(self) -> None:
        """Tell the owners, in submission order (their effects leave the output gate here)."""
        async with self._release_receive:
            while True:
                try:
                    outcome = await self._release_receive.receive()
                except trio.EndOfChannel:
                    return
                self._tell(outcome)
                del outcome  # hold no finished writes (nor their actors) while idle
                if self._failing:
                    # Those told by now say it with their ``broken`` flag;
                    # failures of later batches are not told yet.
                    self._failing = {owner for owner in self._failing if not owner.broken}

    @staticmethod
    def _tell(outcome: list[tuple[PendingWrite, EnsembleError | None]]) -> None:
        for p, error in outcome:
            p.on_done(error)

    def _abandoned(self, p: PendingWrite) -> bool:
        return p.owner.broken or p.owner in self._failing

    async def _commit(self, batch: list[PendingWrite]) -> list[tuple[PendingWrite, EnsembleError | None]]:
        """Commit a batch; the outcome of every write, in order, for the release loop."""
        outcome: list[tuple[PendingWrite, EnsembleError | None]] = []
        live = []
        for p in batch:
            if self._abandoned(p):
                outcome.append((p, Unavailable("actor was reset before this write")))
            else:
                live.append(p)
        if not live:
            return outcome
        started = time.perf_counter()
        try:
            # Shielded: a write whose outcome we never learn would leave the
            # actor unable to tell which of its events are durable.
            with trio.CancelScope(shield=True):
                await self._conn.run(commit_writes, [p.write for p in live])
        except EnsembleError as exc:
            if len(live) == 1:
                self._failing.add(live[0].owner)
                return outcome + [(live[0], exc)]
            log.warning("group_commit_failed_retrying_singly", error=exc.message, writes=len(live))
            for p in live:
                if self._abandoned(p):
                    outcome.append((p, Unavailable("actor was reset before this write")))
                    continue
                try:
                    with trio.CancelScope(shield=True):
                        await self._conn.run(commit_writes, [p.write])
                except EnsembleError as single:
                    # Its owner's later writes must not commit (no gap in
                    # its log), also before the release loop tells it.
                    self._failing.add(p.owner)
                    outcome.append((p, single))
                else:
                    outcome.append((p, None))
            return outcome
        self.last_commit_ms = (time.perf_counter() - started) * 1000
        self.batches += 1
        self.writes += len(live)
        self.last_batch_size = len(live)
        for p in live:
            self.events += len(p.write.events)
            outcome.append((p, None))
        return outcome

    def statistics(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "writes": self.writes,
            "events": self.events,
            "last_commit_ms": round(self.last_commit_ms, 3),
            "last_batch_size": self.last_batch_size,
            "queued": self._receive.statistics().current_buffer_used,
        }
