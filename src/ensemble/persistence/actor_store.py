"""The actor store: leases, event log, snapshots and alarms in Postgres.

Every function here runs on the asyncio side of the bridge with an asyncpg
connection (call them through ``Database.run``), so one crossing does a whole
operation: activation is one crossing, a group commit of many actors' turns is
one crossing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "LoadedActor",
    "StoredEvent",
    "Snapshot",
    "Write",
    "ALARM_DELETE",
    "activate",
    "load",
    "commit_writes",
    "read_events",
    "due_alarms",
]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    offset: int
    epoch: int
    type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    offset: int
    epoch: int
    version: int
    state: bytes


@dataclass(frozen=True, slots=True)
class LoadedActor:
    epoch: int
    snapshot: Snapshot | None
    events: list[StoredEvent]
    alarm_due: datetime | None


ALARM_DELETE = "delete"


@dataclass(slots=True)
class Write:
    """What one actor turn makes durable; many are committed together."""

    kind: str
    key: str
    epoch: int
    events: list[tuple[int, str, bytes]] = field(default_factory=list)  # (offset, type, payload)
    snapshot: Snapshot | None = None
    alarm: datetime | str | None = None  # a due time, ALARM_DELETE, or None for "unchanged"
    prune_through: int | None = None  # delete events at or below this offset
    # Projections into query tables, in the same transaction: (sql, args).
    projections: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)


async def activate(conn: asyncpg.Connection, kind: str, key: str, owner: str) -> LoadedActor:
    """Take the lease (next epoch), then read the latest snapshot and the tail.

    Three round trips, no explicit transaction: nobody else writes this
    actor's rows while we hold the activation, so the reads need no snapshot
    isolation between them.
    """
    epoch = await conn.fetchval(_TAKE_LEASE, kind, key, owner)
    loaded = await _read_state(conn, kind, key)
    return LoadedActor(epoch, loaded.snapshot, loaded.events, loaded.alarm_due)


# The lease bump need not wait for its own fsync: WAL is sequential, so the
# first event this activation commits (synchronously) makes the bump durable
# too.  An activation that crashes before writing any event may see its epoch
# number reused, which no stored event can contradict.  set_config(..., true)
# applies to this statement's own transaction only.
_TAKE_LEASE = """
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO actor_leases (kind, key, epoch, owner)
SELECT $1, $2, 1, $3 FROM relaxed
ON CONFLICT (kind, key) DO UPDATE
    SET epoch = actor_leases.epoch + 1, owner = EXCLUDED.owner, activated_at = now()
RETURNING epoch
"""

_SNAPSHOT_AND_ALARM = """
SELECT s."offset", s.epoch, s.version, s.state,
       (SELECT due_at FROM actor_alarms a WHERE a.kind = $1 AND a.key = $2) AS alarm_due
FROM (SELECT 1) AS one
LEFT JOIN actor_snapshots s ON s.kind = $1 AND s.key = $2
"""


async def load(conn: asyncpg.Connection, kind: str, key: str) -> LoadedActor:
    """Snapshot + tail without touching the lease (reload after a failed turn)."""
    return await _read_state(conn, kind, key)


async def _read_state(conn: asyncpg.Connection, kind: str, key: str) -> LoadedActor:
    row = await conn.fetchrow(_SNAPSHOT_AND_ALARM, kind, key)
    snapshot = Snapshot(row[0], row[1], row[2], row[3]) if row is not None and row[0] is not None else None
    after = snapshot.offset if snapshot else 0
    rows = await conn.fetch(
        'SELECT "offset", epoch, type, payload FROM actor_events '
        'WHERE kind = $1 AND key = $2 AND "offset" > $3 ORDER BY "offset"',
        kind,
        key,
        after,
    )
    alarm_due = row[4] if row is not None else None
    return LoadedActor(0, snapshot, [StoredEvent(r[0], r[1], r[2], r[3]) for r in rows], alarm_due)


async def commit_writes(conn: asyncpg.Connection, writes: list[Write]) -> None:
    """Make every write durable, all or nothing (group commit).

    Without projections the whole batch is **one statement** in its own
    implicit transaction: one round trip and one WAL flush, where
    ``BEGIN`` / statements / ``COMMIT`` cost three or more round trips.
    Projections (arbitrary SQL of the behaviors) need a transaction around
    that statement and their own.
    """
    plan = _CommitPlan(writes)
    if plan.projections:
        async with conn.transaction():
            if plan.sql:
                await conn.execute(plan.sql, *plan.args)
            await _run_projections(conn, plan.projections)
    elif plan.sql:
        await conn.execute(plan.sql, *plan.args)


class _CommitPlan:
    """One SQL statement (data-modifying CTEs) for every part of a batch.

    The statement text depends only on which parts are present (events,
    snapshots, alarm sets, alarm deletes, prunes), so there are at most a
    few shapes and each is prepared once per connection (asyncpg's
    statement cache).  Every part is one ``unnest`` over arrays, however
    many actors the batch holds.  A statement may touch a row only once, so
    snapshots, alarms and prunes are reduced to the last one per actor
    (writes are in submission order, which is each actor's turn order).
    """

    __slots__ = ("sql", "args", "projections")

    def __init__(self, writes: list[Write]) -> None:
        kinds: list[str] = []
        keys: list[str] = []
        offsets: list[int] = []
        epochs: list[int] = []
        types: list[str] = []
        payloads: list[bytes] = []
        snapshots: dict[tuple[str, str], Snapshot] = {}
        alarms: dict[tuple[str, str], datetime | None] = {}  # None: delete
        prunes: dict[tuple[str, str], int] = {}
        # Each actor's projections, in the order its events happened.
        projections: dict[tuple[str, str], list[tuple[str, tuple[Any, ...]]]] = {}
        for w in writes:
            for offset, type_, payload in w.events:
                kinds.append(w.kind)
                keys.append(w.key)
                offsets.append(offset)
                epochs.append(w.epoch)
                types.append(type_)
                payloads.append(payload)
            if w.snapshot is not None:
                held = snapshots.get((w.kind, w.key))
                if held is None or held.offset <= w.snapshot.offset:
                    snapshots[(w.kind, w.key)] = w.snapshot
            if isinstance(w.alarm, datetime):
                alarms[(w.kind, w.key)] = w.alarm
            elif w.alarm == ALARM_DELETE:
                alarms[(w.kind, w.key)] = None
            if w.prune_through is not None:
                prunes[(w.kind, w.key)] = max(w.prune_through, prunes.get((w.kind, w.key), 0))
            if w.projections:
                projections.setdefault((w.kind, w.key), []).extend(w.projections)
        self.projections = list(projections.values())
        args: list[Any] = []
        parts: list[str] = []
        if offsets:
            # The primary key (kind, key, offset) is also the fence: a stale
            # activation that writes an offset someone else already wrote
            # fails here, and the whole statement with it.
            first = len(args) + 1
            args += [kinds, keys, offsets, epochs, types, payloads]
            parts.append(_INSERT_EVENTS.format(*_placeholders(first, 6)))
        if snapshots:
            first = len(args) + 1
            args += [
                [k for k, _ in snapshots],
                [k for _, k in snapshots],
                [s.offset for s in snapshots.values()],
                [s.epoch for s in snapshots.values()],
                [s.version for s in snapshots.values()],
                [s.state for s in snapshots.values()],
            ]
            parts.append(_UPSERT_SNAPSHOTS.format(*_placeholders(first, 6)))
        due = {a: when for a, when in alarms.items() if when is not None}
        if due:
            first = len(args) + 1
            args += [[k for k, _ in due], [k for _, k in due], list(due.values())]
            parts.append(_UPSERT_ALARMS.format(*_placeholders(first, 3)))
        gone = [a for a, when in alarms.items() if when is None]
        if gone:
            first = len(args) + 1
            args += [[k for k, _ in gone], [k for _, k in gone]]
            parts.append(_DELETE_ALARMS.format(*_placeholders(first, 2)))
        if prunes:
            first = len(args) + 1
            args += [[k for k, _ in prunes], [k for _, k in prunes], list(prunes.values())]
            parts.append(_PRUNE_EVENTS.format(*_placeholders(first, 3)))
        self.args = args
        if not parts:
            self.sql = ""
        elif len(parts) == 1:
            self.sql = parts[0]
        else:
            # Data-modifying CTEs all run, to completion, in one statement
            # (one snapshot; they touch disjoint rows).
            self.sql = "WITH " + ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts)) + " SELECT 1"


def _placeholders(first: int, n: int) -> list[str]:
    return [f"${i}" for i in range(first, first + n)]


_INSERT_EVENTS = (
    'INSERT INTO actor_events (kind, key, "offset", epoch, type, payload) '
    "SELECT * FROM unnest({0}::text[], {1}::text[], {2}::bigint[], {3}::bigint[], {4}::text[], {5}::bytea[])"
)
_UPSERT_SNAPSHOTS = (
    'INSERT INTO actor_snapshots (kind, key, "offset", epoch, version, state) '
    "SELECT * FROM unnest({0}::text[], {1}::text[], {2}::bigint[], {3}::bigint[], {4}::int[], {5}::bytea[]) "
    'ON CONFLICT (kind, key) DO UPDATE SET "offset" = EXCLUDED."offset", epoch = EXCLUDED.epoch, '
    "version = EXCLUDED.version, state = EXCLUDED.state, created_at = now() "
    'WHERE actor_snapshots."offset" <= EXCLUDED."offset"'
)
_UPSERT_ALARMS = (
    "INSERT INTO actor_alarms (kind, key, due_at) SELECT * FROM unnest({0}::text[], {1}::text[], {2}::timestamptz[]) "
    "ON CONFLICT (kind, key) DO UPDATE SET due_at = EXCLUDED.due_at"
)
_DELETE_ALARMS = (
    "DELETE FROM actor_alarms a USING unnest({0}::text[], {1}::text[]) AS d(kind, key) "
    "WHERE a.kind = d.kind AND a.key = d.key"
)
_PRUNE_EVENTS = (
    "DELETE FROM actor_events e USING unnest({0}::text[], {1}::text[], {2}::bigint[]) AS p(kind, key, upto) "
    'WHERE e.kind = p.kind AND e.key = p.key AND e."offset" <= p.upto'
)


async def _run_projections(conn: asyncpg.Connection, per_actor: list[list[tuple[str, tuple[Any, ...]]]]) -> None:
    """Run projections in each actor's event order, batched across actors.

    Round k executes the k-th projection of every actor that has one,
    grouped by statement (one executemany per statement), so an actor's
    rows are written in the order of its events while a batch of many
    actors still costs a few round trips, not one per row.
    """
    k = 0
    pending = [rows for rows in per_actor if rows]
    while pending:
        by_sql: dict[str, list[tuple[Any, ...]]] = {}
        for rows in pending:
            sql, args = rows[k]
            by_sql.setdefault(sql, []).append(args)
        for sql, batch in by_sql.items():
            await conn.executemany(sql, batch)
        k += 1
        pending = [rows for rows in pending if len(rows) > k]


async def read_events(
    conn: asyncpg.Connection, kind: str, key: str, after: int, through: int
) -> list[StoredEvent]:
    rows = await conn.fetch(
        'SELECT "offset", epoch, type, payload FROM actor_events '
        'WHERE kind = $1 AND key = $2 AND "offset" > $3 AND "offset" <= $4 ORDER BY "offset"',
        kind,
        key,
        after,
        through,
    )
    return [StoredEvent(r[0], r[1], r[2], r[3]) for r in rows]


async def due_alarms(conn: asyncpg.Connection, before: datetime, limit: int) -> list[tuple[str, str, datetime]]:
    rows = await conn.fetch(
        "SELECT kind, key, due_at FROM actor_alarms WHERE due_at <= $1 ORDER BY due_at LIMIT $2",
        before,
        limit,
    )
    return [(r[0], r[1], r[2]) for r in rows]
