"""Service jobs and their life cycle: assign → accept/decline → start → complete (or cancel)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ensemble.gateway._permissions import DISPATCHER_ROLES, PERMISSIONS
from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import (
    Item,
    ItemList,
    ListQuery,
    Name,
    RequestModel,
    ResponseModel,
    Text,
    Timestamp,
    optional,
    sort_param,
)
from ensemble.persistence.repos import jobs, users
from ensemble.persistence.repos.job_states import JobAction, JobStatus

api = Api("jobs", tag="Jobs")

Priority = Literal["low", "normal", "high", "urgent"]
LongText = Text(5000)


class JobOut(ResponseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    equipment_id: uuid.UUID | None
    title: str
    description: str | None
    status: JobStatus
    priority: Priority
    scheduled_date: datetime | None
    assigned_to: uuid.UUID | None
    assigned_by: uuid.UUID | None
    assigned_at: datetime | None
    accepted_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None
    started_at: datetime | None
    completed_at: datetime | None
    completion_notes: str | None
    cancelled_at: datetime | None
    notes: str | None
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class JobCreate(RequestModel):
    client_id: uuid.UUID
    title: Name
    equipment_id: uuid.UUID | None = None
    description: LongText | None = None  # type: ignore[valid-type]
    priority: Priority = "normal"
    scheduled_date: Timestamp | None = None
    notes: LongText | None = None  # type: ignore[valid-type]


class JobPatch(RequestModel):
    # status is not here on purpose: it moves only through the actions below.
    client_id: uuid.UUID = optional()
    title: Name = optional()
    equipment_id: uuid.UUID | None = None
    description: LongText | None = None  # type: ignore[valid-type]
    priority: Priority = optional()
    scheduled_date: Timestamp | None = None
    notes: LongText | None = None  # type: ignore[valid-type]


class AssignIn(RequestModel):
    technician_id: uuid.UUID


class DeclineIn(RequestModel):
    reason: Text(1000, 1)  # type: ignore[valid-type]


class CompleteIn(RequestModel):
    notes: LongText | None = None  # type: ignore[valid-type]


class CancelIn(RequestModel):
    reason: Text(1000, 1) | None = None  # type: ignore[valid-type]


class NoBody(RequestModel):
    pass


class JobQuery(ListQuery):
    status: list[JobStatus] | None = None
    client_id: uuid.UUID | None = None
    equipment_id: uuid.UUID | None = None
    assigned_to: uuid.UUID | None = None
    priority: Priority | None = None
    scheduled_from: Timestamp | None = None
    scheduled_to: Timestamp | None = None
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(jobs.SORTS, "-created_at") = None  # type: ignore[valid-type]


class TechnicianJobQuery(ListQuery):
    status: list[JobStatus] | None = None
    sort: sort_param(jobs.SORTS, "-created_at") = None  # type: ignore[valid-type]


@api.route("GET", "/jobs", permission="jobs.read", query=JobQuery, response=ItemList[JobOut],
           summary="List jobs (filter by status, client, equipment, technician, priority, schedule window)")
async def list_jobs(call: Call) -> Any:
    q: JobQuery = call.query
    page = await call.db.run(
        lambda conn: jobs.list_jobs(
            conn, call.tenant_id, statuses=[s.value for s in q.status] if q.status else None,
            client_id=q.client_id, equipment_id=q.equipment_id, assigned_to=q.assigned_to, priority=q.priority,
            scheduled_from=q.scheduled_from, scheduled_to=q.scheduled_to, search=q.search,
            sort=q.sort, limit=q.limit, offset=q.offset,
        )
    )
    return page_of(page)


@api.route("GET", "/jobs/technician/<uuid:technician_id>", permission="jobs.read", query=TechnicianJobQuery,
           response=ItemList[JobOut], summary="Jobs assigned to one technician of the tenant")
async def list_technician_jobs(call: Call, technician_id: uuid.UUID) -> Any:
    q: TechnicianJobQuery = call.query
    tenant_id = call.tenant_id

    async def op(conn: Any) -> Any:
        await users.get_member(conn, tenant_id, technician_id)  # 404 for a stranger, not an empty list
        return await jobs.list_jobs(
            conn, tenant_id, assigned_to=technician_id,
            statuses=[s.value for s in q.status] if q.status else None, sort=q.sort, limit=q.limit, offset=q.offset,
        )

    return page_of(await call.db.run(op))


@api.route("GET", "/jobs/<uuid:job_id>", permission="jobs.read", response=Item[JobOut], summary="Get a job")
async def get_job(call: Call, job_id: uuid.UUID) -> Any:
    return item(await call.db.run(jobs.get, call.tenant_id, job_id))


@api.route("POST", "/jobs", permission="jobs.manage", body=JobCreate, response=Item[JobOut], status=201,
           summary="Create a job (unassigned)")
async def create_job(call: Call) -> Any:
    body: JobCreate = call.body
    return item(await call.db.run(jobs.create, call.actor, body.model_dump()))


@api.route("PATCH", "/jobs/<uuid:job_id>", permission="jobs.manage", body=JobPatch, response=Item[JobOut],
           summary="Change a job's details (not its status)")
async def update_job(call: Call, job_id: uuid.UUID) -> Any:
    body: JobPatch = call.body
    return item(await call.db.run(jobs.update, call.actor, job_id, body.changes()))


@api.route("DELETE", "/jobs/<uuid:job_id>", permission="jobs.manage", summary="Delete a job")
async def delete_job(call: Call, job_id: uuid.UUID) -> None:
    await call.db.run(jobs.delete, call.actor, job_id)


async def _act(call: Call, job_id: uuid.UUID, action: JobAction, **kw: Any) -> Any:
    actor = call.actor
    is_dispatcher = call.me.role in DISPATCHER_ROLES
    row = await call.db.run(
        lambda conn: jobs.transition(conn, actor, job_id, action, is_dispatcher=is_dispatcher, **kw)
    )
    return item(row)


_TRANSITION_ERRORS = (409,)


@api.route("POST", "/jobs/<uuid:job_id>/assign", permission="jobs.manage", body=AssignIn, response=Item[JobOut],
           summary="Assign (or reassign) a job to a technician", errors=_TRANSITION_ERRORS)
async def assign_job(call: Call, job_id: uuid.UUID) -> Any:
    body: AssignIn = call.body
    return await _act(
        call, job_id, JobAction.ASSIGN,
        assignee=body.technician_id, assignee_roles=frozenset(r.value for r in PERMISSIONS["jobs.work"]),
    )


@api.route("POST", "/jobs/<uuid:job_id>/accept", permission="jobs.work", body=NoBody, response=Item[JobOut],
           summary="Accept an assigned job (the assignee, or a dispatcher)", errors=_TRANSITION_ERRORS)
async def accept_job(call: Call, job_id: uuid.UUID) -> Any:
    return await _act(call, job_id, JobAction.ACCEPT)


@api.route("POST", "/jobs/<uuid:job_id>/decline", permission="jobs.work", body=DeclineIn, response=Item[JobOut],
           summary="Decline an assigned job, with a reason", errors=_TRANSITION_ERRORS)
async def decline_job(call: Call, job_id: uuid.UUID) -> Any:
    body: DeclineIn = call.body
    return await _act(call, job_id, JobAction.DECLINE, reason=body.reason)


@api.route("POST", "/jobs/<uuid:job_id>/start", permission="jobs.work", body=NoBody, response=Item[JobOut],
           summary="Start an accepted job", errors=_TRANSITION_ERRORS)
async def start_job(call: Call, job_id: uuid.UUID) -> Any:
    return await _act(call, job_id, JobAction.START)


@api.route("POST", "/jobs/<uuid:job_id>/complete", permission="jobs.work", body=CompleteIn, response=Item[JobOut],
           summary="Complete a job in progress", errors=_TRANSITION_ERRORS)
async def complete_job(call: Call, job_id: uuid.UUID) -> Any:
    body: CompleteIn = call.body
    return await _act(call, job_id, JobAction.COMPLETE, notes=body.notes)


@api.route("POST", "/jobs/<uuid:job_id>/cancel", permission="jobs.manage", body=CancelIn, response=Item[JobOut],
           summary="Cancel a job that is not finished", errors=_TRANSITION_ERRORS)
async def cancel_job(call: Call, job_id: uuid.UUID) -> Any:
    body: CancelIn = call.body
    return await _act(call, job_id, JobAction.CANCEL, reason=body.reason)
