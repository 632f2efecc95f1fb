"""Equipment at a client's site (the units jobs and diagnostics are about)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ._common import Actor, Page, TenantTable, Where, fetch_page, like_pattern, order_clause

__all__ = ["TABLE", "SORTS", "create", "get", "update", "delete", "list_equipment", "assign_client"]

_CLIENT_FK = {"equipment_tenant_id_client_id_fkey": ("client_id", "no such client")}

TABLE = TenantTable(
    table="equipment",
    entity="equipment",
    columns=(
        "id", "tenant_id", "client_id", "name", "manufacturer", "model_number", "serial_number",
        "system_type", "install_date", "warranty_expiry", "notes",
        "created_at", "created_by", "updated_at", "updated_by",
    ),
    writable=frozenset({
        "client_id", "name", "manufacturer", "model_number", "serial_number",
        "system_type", "install_date", "warranty_expiry", "notes",
    }),
    foreign_keys=_CLIENT_FK,
)
SORTS = {"name": "name", "created_at": "created_at", "updated_at": "updated_at", "install_date": "install_date"}


async def create(conn: asyncpg.Connection, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.insert(conn, actor, values)


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, equipment_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.get(conn, tenant_id, equipment_id)


async def update(conn: asyncpg.Connection, actor: Actor, equipment_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.update(conn, actor, equipment_id, changes)


async def delete(conn: asyncpg.Connection, actor: Actor, equipment_id: uuid.UUID) -> None:
    await TABLE.delete(conn, actor, equipment_id)


async def assign_client(
    conn: asyncpg.Connection, actor: Actor, equipment_id: uuid.UUID, client_id: uuid.UUID | None
) -> dict[str, Any]:
    """Move equipment to a client (or detach it with ``None``); audited as ``assign``."""
    return await TABLE.update(
        conn, actor, equipment_id, {"client_id": client_id}, action="assign",
        details={"client_id": str(client_id) if client_id else None},
    )


async def list_equipment(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None = None,
    system_type: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if client_id is not None:
        where.add("client_id = {}", client_id)
    if system_type is not None:
        where.add("system_type = {}", system_type)
    if search:
        where.add(
            "(name ILIKE {0} OR manufacturer ILIKE {0} OR model_number ILIKE {0} OR serial_number ILIKE {0})",
            like_pattern(search),
        )
    return await fetch_page(
        conn, select=TABLE.select, table="equipment", where=where,
        order=order_clause(sort, SORTS, "name"), limit=limit, offset=offset,
    )
