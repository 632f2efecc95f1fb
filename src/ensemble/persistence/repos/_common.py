"""What every repository shares: who is acting, pages, sorting, error mapping.

Repository functions are asyncio-side coroutines ``async def op(conn, ...)``
run through ``Database.run``/``Database.transaction``: one bridge crossing
does the whole operation, audit row included.  Driver errors that mean
something to the caller (a duplicate name, a dangling reference) are mapped
here to the exception tree *with the field they concern*; anything else is
left to ``translate_db_error``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ensemble.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "Actor",
    "Page",
    "order_clause",
    "row_dict",
    "map_constraint_errors",
    "Where",
    "fetch_page",
    "set_clause",
    "like_pattern",
    "TenantTable",
]


@dataclass(frozen=True)
class Actor:
    """Who is acting on which tenant; taken from the verified token, never from input."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    request_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def row_dict(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


def order_clause(sort: str | None, allowed: Mapping[str, str], default: str, *, tiebreak: str = "id") -> str:
    """``sort`` is ``field`` or ``-field``; only names in ``allowed`` map to SQL.

    ``allowed`` maps API names to column expressions written by us, so user
    input never reaches the SQL text.  ``id`` breaks ties so that offset
    pagination is stable.
    """
    sort = sort or default
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    column = allowed.get(name)
    if column is None:
        raise InvalidInput(
            "unknown sort field",
            details=[{"field": "sort", "message": f"must be one of {sorted(allowed)} (prefix - for descending)"}],
        )
    direction = "DESC" if descending else "ASC"
    nulls = "NULLS LAST"
    return f"{column} {direction} {nulls}, {tiebreak} {direction}"


def like_pattern(text: str) -> str:
    """``%text%`` for ILIKE with the user's own ``%``/``_`` matched literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Where:
    """Builds a ``WHERE`` from conditions with numbered placeholders."""

    def __init__(self, tenant_column: str, tenant_id: uuid.UUID) -> None:
        self.args: list[Any] = [tenant_id]
        self.parts: list[str] = [f"{tenant_column} = $1"]

    def add(self, sql: str, *values: Any) -> None:
        """``sql`` uses ``{}`` for each value's placeholder, e.g. ``"status = {}"``."""
        placeholders = []
        for value in values:
            self.args.append(value)
            placeholders.append(f"${len(self.args)}")
        self.parts.append(sql.format(*placeholders))

    def sql(self) -> str:
        return " AND ".join(self.parts)


async def fetch_page(
    conn: asyncpg.Connection,
    *,
    select: str,
    table: str,
    where: Where,
    order: str,
    limit: int,
    offset: int,
) -> Page:
    n = len(where.args)
    rows = await conn.fetch(
        f"SELECT {select} FROM {table} WHERE {where.sql()} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
        *where.args,
        limit,
        offset,
    )
    if offset == 0 and len(rows) < limit:
        total = len(rows)  # the whole result fits in this page: no count query needed
    else:
        total = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where.sql()}", *where.args)
    return Page(items=[dict(r) for r in rows], total=total, limit=limit, offset=offset)


def set_clause(changes: Mapping[str, Any], allowed: frozenset[str], first_index: int) -> tuple[str, list[Any]]:
    """``col = $n, ...`` for the changed columns; column names come from ``allowed`` only."""
    parts: list[str] = []
    args: list[Any] = []
    for name, value in changes.items():
        if name not in allowed:
            raise InvalidInput("field cannot be changed", details=[{"field": name, "message": "cannot be changed"}])
        args.append(value)
        parts.append(f"{name} = ${first_index + len(args) - 1}")
    return ", ".join(parts), args


@contextmanager
def map_constraint_errors(
    foreign_keys: Mapping[str, tuple[str, str]] | None = None,
    unique: Mapping[str, tuple[str, str]] | None = None,
) -> Iterator[None]:
    """Turn constraint violations into errors that name the request field.

    Both mappings go from constraint name to ``(field, message)``.  Unknown
    constraints fall through to the generic translation.
    """
    try:
        yield
    except asyncpg.ForeignKeyViolationError as exc:
        hit = (foreign_keys or {}).get(exc.constraint_name or "")
        if hit is None:
            raise
        raise InvalidInput("a referenced object does not exist", details=[{"field": hit[0], "message": hit[1]}]) from None
    except asyncpg.UniqueViolationError as exc:
        hit = (unique or {}).get(exc.constraint_name or "")
        if hit is None:
            raise
        raise Conflict(hit[1], details=[{"field": hit[0], "message": hit[1]}]) from None


@dataclass(frozen=True)
class TenantTable:
    """Create/read/update/delete of one tenant-owned table, each with its audit row.

    Resource modules use this for the plain operations and write their own
    SQL for the rest.  Every statement filters on ``tenant_id``: a row of
    another tenant is indistinguishable from a missing one (``NotFound``).
    """

    table: str
    entity: str
    columns: tuple[str, ...]
    writable: frozenset[str]
    foreign_keys: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    unique: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def select(self) -> str:
        return ", ".join(self.columns)

    async def insert(self, conn: asyncpg.Connection, actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
        names = list(values)
        for name in names:
            if name not in self.writable:
                raise InvalidInput("field cannot be set", details=[{"field": name, "message": "cannot be set"}])
        cols = ["tenant_id", "created_by", "updated_by", *names]
        args: list[Any] = [actor.tenant_id, actor.user_id, actor.user_id, *values.values()]
        placeholders = ", ".join(f"${i}" for i in range(1, len(args) + 1))
        async with conn.transaction():
            with map_constraint_errors(self.foreign_keys, self.unique):
                row = await conn.fetchrow(
                    f"INSERT INTO {self.table} ({', '.join(cols)}) VALUES ({placeholders}) RETURNING {self.select}",
                    *args,
                )
            await _audit(conn, actor, "create", self.entity, row["id"], None)
            return dict(row)

    async def get(self, conn: asyncpg.Connection, tenant_id: uuid.UUID, id: uuid.UUID, *, lock: bool = False) -> dict[str, Any]:
        row = await conn.fetchrow(
            f"SELECT {self.select} FROM {self.table} WHERE tenant_id = $1 AND id = $2{' FOR UPDATE' if lock else ''}",
            tenant_id,
            id,
        )
        if row is None:
            raise NotFound(f"no such {self.entity}")
        return dict(row)

    async def update(
        self,
        conn: asyncpg.Connection,
        actor: Actor,
        id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        action: str = "update",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not changes:
            return await self.get(conn, actor.tenant_id, id)
        assignments, args = set_clause(changes, self.writable, 4)
        async with conn.transaction():
            with map_constraint_errors(self.foreign_keys, self.unique):
                row = await conn.fetchrow(
                    f"UPDATE {self.table} SET {assignments}, updated_at = now(), updated_by = $3"
                    f" WHERE tenant_id = $1 AND id = $2 RETURNING {self.select}",
                    actor.tenant_id,
                    id,
                    actor.user_id,
                    *args,
                )
            if row is None:
                raise NotFound(f"no such {self.entity}")
            await _audit(conn, actor, action, self.entity, id, details or {"fields": sorted(changes)})
            return dict(row)

    async def delete(self, conn: asyncpg.Connection, actor: Actor, id: uuid.UUID) -> dict[str, Any]:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"DELETE FROM {self.table} WHERE tenant_id = $1 AND id = $2 RETURNING {self.select}", actor.tenant_id, id
            )
            if row is None:
                raise NotFound(f"no such {self.entity}")
            await _audit(conn, actor, "delete", self.entity, id, None)
            return dict(row)


async def _audit(
    conn: asyncpg.Connection, actor: Actor, action: str, entity: str, entity_id: Any, details: dict[str, Any] | None
) -> None:
    # Imported late: audit imports this module for Where/Page.
    from . import audit

    await audit.record(conn, actor, action, entity, entity_id, details)
