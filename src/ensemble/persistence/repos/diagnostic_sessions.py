"""Reads of diagnostic sessions, their participants and message history.

The rows are the DiagnosticSession actor's projection (migration 0004),
written with its events; nothing here writes them.  (Login sessions are
``repos.sessions``.)  Every read filters on the tenant: another tenant's
session is a ``NotFound``, like a missing one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from ensemble.errors import NotFound

from ._common import Page, Where, fetch_page, order_clause

__all__ = ["SORTS", "get_session", "list_sessions", "list_messages", "message_at", "participants", "exists"]

SESSION_SELECT = (
    "s.id, s.tenant_id, s.client_id, c.name AS client_name, s.job_id, s.equipment_id, s.equipment, s.mode, s.title,"
    " s.status, s.summary, s.is_collaborative, s.message_count, s.last_message_at, s.last_offset,"
    " s.completed_at, s.completed_by, s.created_at, s.created_by, s.created_by_name, s.updated_at"
)
SESSION_FROM = "diagnostic_sessions s LEFT JOIN clients c ON c.tenant_id = s.tenant_id AND c.id = s.client_id"
SORTS = {"created_at": "s.created_at", "updated_at": "s.updated_at", "last_message_at": "s.last_message_at"}
PARTICIPANT_SELECT = "technician_id AS id, name, role, member_role, invited_by, joined_at, left_at"


async def exists(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM diagnostic_sessions WHERE tenant_id = $1 AND id = $2)", tenant_id, session_id
    )
    return found


async def participants(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {PARTICIPANT_SELECT} FROM diagnostic_participants"
        " WHERE tenant_id = $1 AND session_id = $2 ORDER BY joined_at, technician_id",
        tenant_id,
        session_id,
    )
    return [dict(r) for r in rows]


async def get_session(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> dict[str, Any]:
    """The session with its participants (who left included, with ``left_at``)."""
    row = await conn.fetchrow(f"SELECT {SESSION_SELECT} FROM {SESSION_FROM} WHERE s.tenant_id = $1 AND s.id = $2", tenant_id, session_id)
    if row is None:
        raise NotFound("no such session")
    session = dict(row)
    session["participants"] = await participants(conn, tenant_id, session_id)
    return session


async def list_sessions(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None = None,
    status: str | None = None,
    technician_id: uuid.UUID | None = None,
    mode: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("s.tenant_id", tenant_id)
    if client_id is not None:
        where.add("s.client_id = {}", client_id)
    if status is not None:
        where.add("s.status = {}", status)
    if mode is not None:
        where.add("s.mode = {}", mode)
    if technician_id is not None:
        where.add(
            "EXISTS (SELECT 1 FROM diagnostic_participants p WHERE p.session_id = s.id AND p.technician_id = {})",
            str(technician_id),
        )
    if created_from is not None:
        where.add("s.created_at >= {}", created_from)
    if created_to is not None:
        where.add("s.created_at < {}", created_to)
    return await fetch_page(
        conn, select=SESSION_SELECT, table=SESSION_FROM, where=where,
        order=order_clause(sort, SORTS, "-created_at", tiebreak="s.id"), limit=limit, offset=offset,
    )


async def list_messages(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    after_offset: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """The history in the session's order (its event offsets), each item the message as broadcast."""
    if not await exists(conn, tenant_id, session_id):
        raise NotFound("no such session")
    where = Where("tenant_id", tenant_id)
    where.add("session_id = {}", session_id)
    if after_offset is not None:
        where.add('"offset" > {}', after_offset)
    if kind is not None:
        where.add("kind = {}", kind)
    page = await fetch_page(
        conn, select="body", table="diagnostic_messages", where=where, order='"offset" ASC NULLS LAST, id ASC',
        limit=limit, offset=offset,
    )
    return Page(items=[row["body"] for row in page.items], total=page.total, limit=page.limit, offset=page.offset)


async def message_at(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID, message_offset: int
) -> dict[str, Any] | None:
    body: dict[str, Any] | None = await conn.fetchval(
        'SELECT body FROM diagnostic_messages WHERE tenant_id = $1 AND session_id = $2 AND "offset" = $3',
        tenant_id,
        session_id,
        message_offset,
    )
    return body
