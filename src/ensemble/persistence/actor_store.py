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
    """Make every write durable in one transaction (group commit)."""
    kinds: list[str] = []
    keys: list[str] = []
    offsets: list[int] = []
    epochs: list[int] = []
    types: list[str] = []
    payloads: list[bytes] = []
    snapshots: list[tuple[Any, ...]] = []
    alarms_set: list[tuple[Any, ...]] = []
    alarms_del: list[tuple[Any, ...]] = []
    prunes: list[tuple[Any, ...]] = []
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
            s = w.snapshot
            snapshots.append((w.kind, w.key, s.offset, s.epoch, s.version, s.state))
        if isinstance(w.alarm, datetime):
            alarms_set.append((w.kind, w.key, w.alarm))
        elif w.alarm == ALARM_DELETE:
            alarms_del.append((w.kind, w.key))
        if w.prune_through is not None:
            prunes.append((w.kind, w.key, w.prune_through))
        if w.projections:
            projections.setdefault((w.kind, w.key), []).extend(w.projections)

    async with conn.transaction():
        if offsets:
            # One statement for every event of the batch.  The primary key
            # (kind, key, offset) is also the fence: a stale activation that
            # writes an offset someone else already wrote fails here.
            await conn.execute(
                'INSERT INTO actor_events (kind, key, "offset", epoch, type, payload) '
                "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bytea[])",
                kinds,
                keys,
                offsets,
                epochs,
                types,
                payloads,
            )
        if snapshots:
            await conn.executemany(
                'INSERT INTO actor_snapshots (kind, key, "offset", epoch, version, state) '
                "VALUES ($1, $2, $3, $4, $5, $6) "
                'ON CONFLICT (kind, key) DO UPDATE SET "offset" = EXCLUDED."offset", epoch = EXCLUDED.epoch, '
                "version = EXCLUDED.version, state = EXCLUDED.state, created_at = now() "
                'WHERE actor_snapshots."offset" <= EXCLUDED."offset"',
                snapshots,
            )
        if alarms_set:
            await conn.executemany(
                "INSERT INTO actor_alarms (kind, key, due_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (kind, key) DO UPDATE SET due_at = EXCLUDED.due_at",
                alarms_set,
            )
        if alarms_del:
            await conn.executemany("DELETE FROM actor_alarms WHERE kind = $1 AND key = $2", alarms_del)
        if prunes:
            await conn.executemany(
                'DELETE FROM actor_events WHERE kind = $1 AND key = $2 AND "offset" <= $3', prunes
            )
        await _run_projections(conn, list(projections.values()))


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
