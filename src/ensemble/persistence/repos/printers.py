"""Printers of a print-farm tenant, optionally behind one of its hubs."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ensemble.errors import InvalidInput

from ._common import Actor, Page, TenantTable, Where, fetch_page, like_pattern, order_clause

__all__ = ["TABLE", "SORTS", "create", "get", "update", "delete", "list_printers"]

TABLE = TenantTable(
    table="printers",
    entity="printer",
    columns=(
        "id", "tenant_id", "hub_id", "name", "model", "manufacturer", "serial_number", "firmware_version",
        "connection_type", "ip_address", "status", "location", "is_active", "sort_order",
        "created_at", "created_by", "updated_at", "updated_by",
    ),
    # status is reported by the hub, not set over REST.
    writable=frozenset({
        "hub_id", "name", "model", "manufacturer", "serial_number", "connection_type",
        "ip_address", "location", "is_active", "sort_order",
    }),
    unique={"printers_tenant_id_name_key": ("name", "a printer with this name exists")},
)
SORTS = {"name": "name", "sort_order": "sort_order", "created_at": "created_at", "status": "status", "model": "model"}


async def _check_hub(conn: asyncpg.Connection, tenant_id: uuid.UUID, hub_id: uuid.UUID | None) -> None:
    if hub_id is None:
        return
    # FOR SHARE: a concurrent release of this hub waits for us (and then detaches us).
    found = await conn.fetchval("SELECT 1 FROM hubs WHERE id = $1 AND tenant_id = $2 FOR SHARE", hub_id, tenant_id)
    if found is None:
        raise InvalidInput("no such hub", details=[{"field": "hub_id", "message": "no such hub in this tenant"}])


async def create(conn: asyncpg.Connection, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    async with conn.transaction():
        await _check_hub(conn, actor.tenant_id, values.get("hub_id"))
        return await TABLE.insert(conn, actor, values)


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, printer_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.get(conn, tenant_id, printer_id)


async def update(conn: asyncpg.Connection, actor: Actor, printer_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    async with conn.transaction():
        if "hub_id" in changes:
            await _check_hub(conn, actor.tenant_id, changes["hub_id"])
        return await TABLE.update(conn, actor, printer_id, changes)


async def delete(conn: asyncpg.Connection, actor: Actor, printer_id: uuid.UUID) -> None:
    await TABLE.delete(conn, actor, printer_id)


async def list_printers(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    hub_id: uuid.UUID | None = None,
    status: str | None = None,
    is_active: bool | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if hub_id is not None:
        where.add("hub_id = {}", hub_id)
    if status is not None:
        where.add("status = {}", status)
    if is_active is not None:
        where.add("is_active = {}", is_active)
    if search:
        where.add("(name ILIKE {0} OR model ILIKE {0} OR serial_number ILIKE {0})", like_pattern(search))
    return await fetch_page(
        conn, select=TABLE.select, table="printers", where=where,
        order=order_clause(sort, SORTS, "sort_order"), limit=limit, offset=offset,
    )
