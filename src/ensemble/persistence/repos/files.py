"""Metadata of uploaded files; the bytes live in the object store."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ._common import Actor, Page, TenantTable, Where, fetch_page, like_pattern, order_clause

__all__ = ["TABLE", "SORTS", "create", "get", "delete", "list_files"]

TABLE = TenantTable(
    table="files",
    entity="file",
    columns=(
        "id", "tenant_id", "name", "object_key", "content_type", "size_bytes", "etag",
        "created_at", "created_by", "updated_at", "updated_by",
    ),
    writable=frozenset({"id", "name", "object_key", "content_type", "size_bytes", "etag"}),
)
SORTS = {"name": "name", "created_at": "created_at", "size_bytes": "size_bytes"}


async def create(conn: asyncpg.Connection, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.insert(conn, actor, values)


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, file_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.get(conn, tenant_id, file_id)


async def delete(conn: asyncpg.Connection, actor: Actor, file_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.delete(conn, actor, file_id)


async def list_files(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    content_type: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if content_type is not None:
        where.add("content_type = {}", content_type)
    if search:
        where.add("name ILIKE {}", like_pattern(search))
    return await fetch_page(
        conn, select=TABLE.select, table="files", where=where,
        order=order_clause(sort, SORTS, "-created_at"), limit=limit, offset=offset,
    )
