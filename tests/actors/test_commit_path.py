"""The group commit path: one statement per batch, all or nothing, a reserved connection."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import msgpack
import pytest
import trio
import trio.testing

from ensemble.actors import CLOSE_ACTOR_RESET, ActorSystem, Address, SubscriberClosed
from ensemble.errors import Conflict, Unavailable
from ensemble.persistence.actor_store import ALARM_DELETE, Snapshot, Write, commit_writes
from ensemble.persistence.database import Database, open_database


def _event(offset: int, n: int = 1) -> tuple[int, str, bytes]:
    return (offset, "incremented", msgpack.packb({"type": "incremented", "by": n}))


async def _offsets(db: Database, kind: str, key: str) -> list[int]:
    rows = await db.fetch('SELECT "offset" FROM actor_events WHERE kind = $1 AND key = $2 ORDER BY "offset"', kind, key)
    return [r[0] for r in rows]


async def test_a_batch_with_every_part_lands_whole(db: Database) -> None:
    """Events, snapshots, alarms and prunes of several actors in one statement; per actor the last word wins."""
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    later = soon + timedelta(hours=1)
    await db.run(commit_writes, [Write("room", a, 1, events=[_event(1), _event(2), _event(3)])])
    writes = [
        Write("room", a, 1, events=[_event(4)], snapshot=Snapshot(4, 1, 2, b"four"), alarm=soon),
        Write("room", b, 1, events=[_event(1)], alarm=ALARM_DELETE),
        # The same actor again in the same batch: a later snapshot, the alarm deleted, a prune.
        Write("room", a, 1, events=[_event(5)], snapshot=Snapshot(5, 1, 2, b"five"), alarm=ALARM_DELETE,
              prune_through=2),
        Write("room", b, 1, events=[_event(2)], alarm=later),
    ]
    await db.run(commit_writes, writes)
    assert await _offsets(db, "room", a) == [3, 4, 5]
    assert await _offsets(db, "room", b) == [1, 2]
    snap = await db.fetchrow('SELECT "offset", state FROM actor_snapshots WHERE kind = $1 AND key = $2', "room", a)
    assert (snap[0], snap[1]) == (5, b"five")
    alarms = {r[0]: r[1] for r in await db.fetch(
        "SELECT key, due_at FROM actor_alarms WHERE kind = 'room' AND key = ANY($1::text[])", [a, b])}
    assert alarms == {b: later}


async def test_an_older_snapshot_never_replaces_a_newer_one(db: Database) -> None:
    key = uuid.uuid4().hex
    await db.run(commit_writes, [Write("room", key, 1, snapshot=Snapshot(9, 1, 2, b"nine"))])
    await db.run(commit_writes, [Write("room", key, 1, snapshot=Snapshot(5, 1, 2, b"five"))])
    row = await db.fetchrow('SELECT "offset", state FROM actor_snapshots WHERE kind = $1 AND key = $2', "room", key)
    assert (row[0], row[1]) == (9, b"nine")


async def test_a_fenced_write_fails_the_whole_batch_and_stores_nothing(db: Database) -> None:
    fenced, other = uuid.uuid4().hex, uuid.uuid4().hex
    await db.run(commit_writes, [Write("room", fenced, 2, events=[_event(1)])])
    batch = [
        Write("room", other, 1, events=[_event(1)], snapshot=Snapshot(1, 1, 2, b"x"), alarm=datetime.now(timezone.utc)),
        Write("room", fenced, 1, events=[_event(1)]),  # a stale activation re-writing offset 1
    ]
    with pytest.raises(Conflict):
        await db.run(commit_writes, batch)
    assert await _offsets(db, "room", other) == []
    assert await db.fetchval("SELECT count(*) FROM actor_snapshots WHERE key = $1", other) == 0
    assert await db.fetchval("SELECT count(*) FROM actor_alarms WHERE key = $1", other) == 0


async def test_group_commit_fences_one_stale_actor_and_keeps_the_others(system: ActorSystem, db: Database, room) -> None:  # type: ignore[no-untyped-def]
    """Writes of many actors share a batch; the stale one fails alone, the others commit in order."""
    stale, others = room(), [room() for _ in range(5)]
    await system.ask(stale, {"type": "increment"})
    for address in others:
        await system.ask(address, {"type": "increment"})
    # Another writer took the stale actor's next offset.
    await db.execute(
        "INSERT INTO actor_events (kind, key, \"offset\", epoch, type, payload) VALUES ('room', $1, 2, 99, 'incremented', $2)",
        stale.key,
        msgpack.packb({"type": "incremented", "by": 100}),
    )
    results: dict[Address, object] = {}

    async def ask(address: Address, n: int) -> None:
        try:
            results[(address, n)] = await system.ask(address, {"type": "increment"})  # type: ignore[index]
        except Unavailable as exc:
            results[(address, n)] = exc  # type: ignore[index]

    async with trio.open_nursery() as nursery:  # all queued before the committer runs: one batch
        for n in range(3):
            for address in [*others, stale]:
                nursery.start_soon(ask, address, n)
    for address in others:
        # trio starts tasks in no fixed order: each ask got one of the next offsets.
        assert sorted(results[(address, n)] for n in range(3)) == [2, 3, 4]  # type: ignore[index, type-var]
        assert await _offsets(db, "room", address.key) == [1, 2, 3, 4]
    assert all(isinstance(results[(stale, n)], Unavailable) for n in range(3))  # type: ignore[index]
    assert await _offsets(db, "room", stale.key) == [1, 2]
    assert await system.ask(stale, {"type": "increment"}) == 102


async def test_a_lost_commit_connection_resets_the_actor_and_is_replaced(system: ActorSystem, db: Database, room) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    address = room()
    await system.ask(address, {"type": "increment"})
    sub = system.new_subscriber("room")
    await system.attach(address, sub)
    pid = system.committer._conn._conn.get_server_pid()  # type: ignore[union-attr]
    # Hold the commit in Postgres (a lock on the log), then kill its connection mid-commit.
    locker = await db.bridge.run(asyncpg.connect, db.dsn)
    try:
        await db.bridge.run(locker.execute, "BEGIN; LOCK TABLE actor_events IN EXCLUSIVE MODE")
        outcome: list[object] = []

        async def ask() -> None:
            try:
                outcome.append(await system.ask(address, {"type": "increment"}))
            except Unavailable as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            with trio.fail_after(10):
                while not await db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", pid
                ):
                    await trio.sleep(0.01)
            assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        assert isinstance(outcome[0], Unavailable)
    finally:
        await db.bridge.run(locker.close)
    frames = []
    with pytest.raises(SubscriberClosed) as closed:
        while True:
            frames.append(await sub.receive())
    assert closed.value.code == CLOSE_ACTOR_RESET
    assert all(f.message.get("offset", 0) <= 1 for f in frames)
    # A fresh connection takes over; the log has no gap.
    assert await system.ask(address, {"type": "increment"}) == 2
    assert await _offsets(db, "room", address.key) == [1, 2]
    assert system.committer._conn._conn.get_server_pid() != pid  # type: ignore[union-attr]
    # The lost connection's pool slot came back (else closing the pool would wait for it forever).
    assert db.pool.get_size() - db.pool.get_idle_size() == 1  # the committer's new one


async def test_closing_the_database_gives_back_a_reserved_connection(db: Database) -> None:
    async with open_database(db.bridge, db.dsn, min_size=1, max_size=1) as single:
        reserved = single.reserve()
        assert await reserved.run(lambda conn: conn.fetchval("SELECT 1")) == 1
        # The pool's only connection is reserved; close() must release it, not hang.
    with trio.fail_after(5):
        async with open_database(db.bridge, db.dsn, min_size=1, max_size=1) as again:
            reserved = again.reserve()
            await reserved.run(lambda conn: conn.fetchval("SELECT 1"))
            await reserved.aclose()
            assert await again.fetchval("SELECT 2") == 2


class _Owner:
    """A stand-in activation: records what the committer tells it, breaks on a failure."""

    def __init__(self, log: list[tuple[str, int, type[BaseException] | None]], name: str) -> None:
        self.broken = False
        self.log = log
        self.name = name

    def write_done(self, pending, error) -> None:  # type: ignore[no-untyped-def]
        self.log.append((self.name, pending.seq, type(error) if error is not None else None))
        if error is not None:
            self.broken = True


async def test_a_later_batch_never_commits_past_a_failure_not_yet_released(db: Database) -> None:
    """The next batch's commit starts before the previous batch's owners are told.
    A write that follows a failed one of the same actor must still not commit (no gap)."""
    from ensemble.actors._committer import GroupCommitter, PendingWrite

    x, y = uuid.uuid4().hex, uuid.uuid4().hex
    await db.run(commit_writes, [Write("room", x, 1, events=[_event(1), _event(2)])])  # offset 2 is taken
    told: list[tuple[str, int, type[BaseException] | None]] = []
    owner_x, owner_y = _Owner(told, "x"), _Owner(told, "y")
    committer = GroupCommitter(db)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            # A stale write of x (offset 2 again): its batch fails.
            assert committer.try_submit(PendingWrite(Write("room", x, 1, events=[_event(2)]), owner_x, 1, 2, 0.0))
            await trio.testing.wait_all_tasks_blocked()  # that commit is in flight now
            # x's next write and y's first land in the next batch.
            assert committer.try_submit(PendingWrite(Write("room", x, 1, events=[_event(3)]), owner_x, 2, 3, 0.0))
            assert committer.try_submit(PendingWrite(Write("room", y, 1, events=[_event(1)]), owner_y, 1, 1, 0.0))
            with trio.fail_after(10):
                while len(told) < 3:
                    await trio.sleep(0.01)
            committer.close()
    finally:
        await committer.aclose()
    assert told == [("x", 1, Conflict), ("x", 2, Unavailable), ("y", 1, None)]
    assert await _offsets(db, "room", x) == [1, 2]
    assert await _offsets(db, "room", y) == [1]
