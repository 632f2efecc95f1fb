"""Clients of a field-service tenant (the people and sites jobs are for)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ._common import Actor, Page, TenantTable, Where, fetch_page, like_pattern, order_clause

__all__ = ["TABLE", "SORTS", "create", "get", "update", "delete", "list_clients"]

TABLE = TenantTable(
    table="clients",
    entity="client",
    columns=(
        "id", "tenant_id", "name", "phone", "email", "address", "notes", "status",
        "created_at", "created_by", "updated_at", "updated_by",
    ),
    writable=frozenset({"name", "phone", "email", "address", "notes", "status"}),
)
SORTS = {"name": "name", "created_at": "created_at", "updated_at": "updated_at", "status": "status"}


async def create(conn: asyncpg.Connection, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.insert(conn, actor, values)


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, client_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.get(conn, tenant_id, client_id)


async def update(conn: asyncpg.Connection, actor: Actor, client_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.update(conn, actor, client_id, changes)


async def delete(conn: asyncpg.Connection, actor: Actor, client_id: uuid.UUID) -> None:
    await TABLE.delete(conn, actor, client_id)


async def list_clients(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    status: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if status is not None:
        where.add("status = {}", status)
    if search:
        where.add("(name ILIKE {0} OR email ILIKE {0} OR phone ILIKE {0})", like_pattern(search))
    return await fetch_page(
        conn, select=TABLE.select, table="clients", where=where,
        order=order_clause(sort, SORTS, "name"), limit=limit, offset=offset,
    )
