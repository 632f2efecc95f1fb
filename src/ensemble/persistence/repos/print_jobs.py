"""Print jobs: read side (rows are written by the HubConnection actor's projection).

Creating and changing a job is an actor command (``start_job``,
``job_control``); this module reads what those commands made durable, and
gathers what a submission needs (printer, file, hub facts) in one crossing.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ensemble.errors import Conflict, NotFound

from ._common import Page, Where, fetch_page, order_clause
from .hubs_live import hub_facts

__all__ = ["COLUMNS", "SORTS", "submission", "get", "list_jobs", "transitions", "audit_action"]

COLUMNS = (
    "id", "tenant_id", "printer_id", "hub_id", "file_id", "file_name", "file_size", "status", "progress",
    "bytes_sent", "bytes_total", "current_layer", "total_layers", "remaining_s", "failure_reason", "command_id",
    "submitted_by", "submitted_at", "started_at", "finished_at", "updated_at",
)
_SELECT = ", ".join(COLUMNS)
SORTS = {"submitted_at": "submitted_at", "updated_at": "updated_at", "status": "status", "file_name": "file_name"}


async def submission(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, printer_id: uuid.UUID, file_id: uuid.UUID
) -> dict[str, Any]:
    """The printer, the file and the hub's facts for a new job; 404/409 when they do not fit."""
    printer = await conn.fetchrow(
        "SELECT id, name, hub_id, is_active FROM printers WHERE id = $1 AND tenant_id = $2", printer_id, tenant_id
    )
    if printer is None:
        raise NotFound("no such printer", details={"printer_id": str(printer_id)})
    file = await conn.fetchrow(
        "SELECT id, name, object_key, size_bytes, etag, content_type FROM files WHERE id = $1 AND tenant_id = $2",
        file_id,
        tenant_id,
    )
    if file is None:
        raise NotFound("no such file", details={"file_id": str(file_id)})
    if printer["hub_id"] is None:
        raise Conflict("the printer is not connected through a hub", details={"printer_id": str(printer_id)})
    if not printer["is_active"]:
        raise Conflict("the printer is not active", details={"printer_id": str(printer_id)})
    facts = await hub_facts(conn, printer["hub_id"])
    return {"printer": dict(printer), "file": dict(file), "hub_id": printer["hub_id"], "facts": facts}


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(f"SELECT {_SELECT} FROM print_jobs WHERE id = $1 AND tenant_id = $2", job_id, tenant_id)
    if row is None:
        raise NotFound("no such print job")
    return dict(row)


async def transitions(conn: asyncpg.Connection, tenant_id: uuid.UUID, job_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT status, progress, reason, at FROM print_job_transitions"
        " WHERE job_id = $1 AND tenant_id = $2 ORDER BY version",
        job_id,
        tenant_id,
    )
    return [dict(r) for r in rows]


async def list_jobs(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    printer_id: uuid.UUID | None = None,
    status: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if printer_id is not None:
        where.add("printer_id = {}", printer_id)
    if status is not None:
        where.add("status = {}", status)
    return await fetch_page(
        conn, select=_SELECT, table="print_jobs", where=where,
        order=order_clause(sort, SORTS, "-submitted_at"), limit=limit, offset=offset,
    )


async def audit_action(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID | None, request_id: str | None,
    action: str, job_id: uuid.UUID, details: dict[str, Any] | None = None,
) -> None:
    from . import audit
    from ._common import Actor

    await audit.record(conn, Actor(tenant_id=tenant_id, user_id=user_id, request_id=request_id), action,
                       "print_job", job_id, details)
