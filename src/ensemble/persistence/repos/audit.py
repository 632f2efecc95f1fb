"""The audit trail: one row per create/update/delete, written in the same transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from ._common import Actor, Page, Where, fetch_page, order_clause

__all__ = ["record", "list_entries", "SORTS"]

SORTS = {"at": "at", "entity": "entity", "action": "action"}


async def record(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: uuid.UUID | str,
    details: dict[str, Any] | None = None,
    *,
    tenant_id: uuid.UUID | None = None,
) -> None:
    """Append an audit row; ``tenant_id`` overrides the actor's (signup, hub claim)."""
    await conn.execute(
        "INSERT INTO audit_log (tenant_id, actor_id, action, entity, entity_id, request_id, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tenant_id or actor.tenant_id,
        actor.user_id,
        action,
        entity,
        str(entity_id),
        actor.request_id,
        details,
    )


async def list_entries(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if entity is not None:
        where.add("entity = {}", entity)
    if entity_id is not None:
        where.add("entity_id = {}", entity_id)
    if actor_id is not None:
        where.add("actor_id = {}", actor_id)
    if action is not None:
        where.add("action = {}", action)
    if since is not None:
        where.add("at >= {}", since)
    if until is not None:
        where.add("at < {}", until)
    return await fetch_page(
        conn,
        select="id, tenant_id, actor_id, action, entity, entity_id, at, request_id, details",
        table="audit_log",
        where=where,
        order=order_clause(sort, SORTS, "-at"),
        limit=limit,
        offset=offset,
    )
