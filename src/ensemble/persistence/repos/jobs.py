"""Service jobs: CRUD plus the state transitions of ``job_states``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from ensemble.errors import Forbidden, InvalidInput

from . import audit
from ._common import Actor, Page, TenantTable, Where, fetch_page, like_pattern, order_clause
from .job_states import ASSIGNEE_ACTIONS, JobAction, next_status

__all__ = ["TABLE", "SORTS", "create", "get", "update", "delete", "list_jobs", "transition"]

_FKS = {
    "jobs_tenant_id_client_id_fkey": ("client_id", "no such client"),
    "jobs_tenant_id_equipment_id_fkey": ("equipment_id", "no such equipment"),
}

TABLE = TenantTable(
    table="jobs",
    entity="job",
    columns=(
        "id", "tenant_id", "client_id", "equipment_id", "title", "description", "status", "priority",
        "scheduled_date", "assigned_to", "assigned_by", "assigned_at", "accepted_at", "declined_at",
        "decline_reason", "started_at", "completed_at", "completion_notes", "cancelled_at", "notes",
        "created_at", "created_by", "updated_at", "updated_by",
    ),
    writable=frozenset({"client_id", "equipment_id", "title", "description", "priority", "scheduled_date", "notes"}),
    foreign_keys=_FKS,
)
SORTS = {
    "scheduled_date": "scheduled_date",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "title": "title",
    "status": "status",
    "priority": "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END",
}


async def create(conn: asyncpg.Connection, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.insert(conn, actor, values)


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.get(conn, tenant_id, job_id)


async def update(conn: asyncpg.Connection, actor: Actor, job_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    return await TABLE.update(conn, actor, job_id, changes)


async def delete(conn: asyncpg.Connection, actor: Actor, job_id: uuid.UUID) -> None:
    await TABLE.delete(conn, actor, job_id)


async def list_jobs(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    statuses: list[str] | None = None,
    client_id: uuid.UUID | None = None,
    equipment_id: uuid.UUID | None = None,
    assigned_to: uuid.UUID | None = None,
    priority: str | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if statuses:
        where.add("status = ANY({}::text[])", statuses)
    if client_id is not None:
        where.add("client_id = {}", client_id)
    if equipment_id is not None:
        where.add("equipment_id = {}", equipment_id)
    if assigned_to is not None:
        where.add("assigned_to = {}", assigned_to)
    if priority is not None:
        where.add("priority = {}", priority)
    if scheduled_from is not None:
        where.add("scheduled_date >= {}", scheduled_from)
    if scheduled_to is not None:
        where.add("scheduled_date < {}", scheduled_to)
    if search:
        where.add("(title ILIKE {0} OR description ILIKE {0})", like_pattern(search))
    return await fetch_page(
        conn, select=TABLE.select, table="jobs", where=where,
        order=order_clause(sort, SORTS, "-created_at"), limit=limit, offset=offset,
    )


async def transition(
    conn: asyncpg.Connection,
    actor: Actor,
    job_id: uuid.UUID,
    action: JobAction,
    *,
    is_dispatcher: bool,
    assignee: uuid.UUID | None = None,
    assignee_roles: frozenset[str] = frozenset(),
    reason: str | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """Apply one action under a row lock; 404, then 403 (not yours), then 409 (wrong state)."""
    async with conn.transaction():
        job = await TABLE.get(conn, actor.tenant_id, job_id, lock=True)
        if action in ASSIGNEE_ACTIONS and not is_dispatcher and job["assigned_to"] != actor.user_id:
            raise Forbidden(f"only the assigned technician can {action.value} this job")
        new_status = next_status(job["status"], action)
        sets = ["status = $4"]
        args: list[Any] = [new_status.value]

        def put(column: str, value: Any) -> None:
            args.append(value)
            sets.append(f"{column} = ${len(args) + 3}")

        if action is JobAction.ASSIGN:
            role = await conn.fetchval(
                "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2", actor.tenant_id, assignee
            )
            if role is None or role not in assignee_roles:
                raise InvalidInput(
                    "cannot assign to this user",
                    details=[{"field": "technician_id", "message": "not a member of this tenant who can work jobs"}],
                )
            put("assigned_to", assignee)
            put("assigned_by", actor.user_id)
            sets += ["assigned_at = now()", "accepted_at = NULL", "declined_at = NULL", "decline_reason = NULL"]
        elif action is JobAction.ACCEPT:
            sets.append("accepted_at = now()")
        elif action is JobAction.DECLINE:
            sets.append("declined_at = now()")
            put("decline_reason", reason)
        elif action is JobAction.START:
            sets.append("started_at = now()")
        elif action is JobAction.COMPLETE:
            sets.append("completed_at = now()")
            put("completion_notes", notes)
        elif action is JobAction.CANCEL:
            sets.append("cancelled_at = now()")
            if reason is not None:
                put("notes", reason if not job["notes"] else f"{job['notes']}\n\nCancelled: {reason}")
        row = await conn.fetchrow(
            f"UPDATE jobs SET {', '.join(sets)}, updated_at = now(), updated_by = $3"
            f" WHERE tenant_id = $1 AND id = $2 RETURNING {TABLE.select}",
            actor.tenant_id,
            job_id,
            actor.user_id,
            *args,
        )
        details: dict[str, Any] = {"from": job["status"], "to": new_status.value}
        if assignee is not None:
            details["assigned_to"] = str(assignee)
        await audit.record(conn, actor, action.value, "job", job_id, details)
        return dict(row)
