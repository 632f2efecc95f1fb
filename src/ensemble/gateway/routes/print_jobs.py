"""Print jobs: submit a print file to a printer, pause/resume/cancel, history.

Submitting and controlling go through ``ensemble.printing`` (shared with the
demo): the printer's HubConnection actor owns the job's state machine and the
command to the hub; ``print_jobs`` is its projection, read back for the answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from quart import request

from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import Item, ItemList, ListQuery, RequestModel, ResponseModel, Text, sort_param
from ensemble.persistence.repos import print_jobs
from ensemble.printing import control_print_job, submit_print_job

api = Api("print_jobs", tag="Print jobs")

JobStatus = Literal["queued", "uploading", "printing", "paused", "completed", "failed", "cancelled"]


class PrintJobOut(ResponseModel):
    id: uuid.UUID
    printer_id: uuid.UUID | None
    hub_id: uuid.UUID | None
    file_id: uuid.UUID | None
    file_name: str
    file_size: int
    status: JobStatus
    progress: int
    bytes_sent: int | None
    bytes_total: int | None
    current_layer: int | None
    total_layers: int | None
    remaining_s: int | None
    failure_reason: str | None
    submitted_by: uuid.UUID | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class TransitionOut(ResponseModel):
    status: JobStatus
    progress: int | None
    reason: str | None
    at: datetime


class PrintJobDetail(PrintJobOut):
    transitions: list[TransitionOut]


class PrintJobIn(RequestModel):
    printer_id: uuid.UUID
    file_id: uuid.UUID


class NoBody(RequestModel):
    pass


class CancelIn(RequestModel):
    reason: Text(500, 1) | None = None  # type: ignore[valid-type]


class PrintJobQuery(ListQuery):
    printer_id: uuid.UUID | None = None
    status: JobStatus | None = None
    sort: sort_param(print_jobs.SORTS, "-submitted_at") = None  # type: ignore[valid-type]


@api.route(
    "POST", "/print-jobs", permission="print_jobs.manage", body=PrintJobIn, response=Item[PrintJobOut], status=201,
    summary="Submit a print job: a print file from the object store to a printer behind a hub",
    description="The job starts queued; the hub gets a print_command with a signed download URL (re-sent after "
    "reconnects, failed after the command TTL). 409 when the printer has no hub or already has an active job.",
    errors=(404, 409),
)
async def submit_job(call: Call) -> Any:
    body: PrintJobIn = call.body
    return item(await submit_print_job(
        call.services, tenant_id=call.tenant_id, user_id=call.me.user_id, printer_id=body.printer_id,
        file_id=body.file_id, origin=request.host_url, request_id=call.request_id,
    ))


@api.route("GET", "/print-jobs", permission="print_jobs.read", query=PrintJobQuery, response=ItemList[PrintJobOut],
           summary="Print job history (filter by printer and status)")
async def list_jobs(call: Call) -> Any:
    q: PrintJobQuery = call.query
    page = await call.db.run(
        lambda conn: print_jobs.list_jobs(
            conn, call.tenant_id, printer_id=q.printer_id, status=q.status, sort=q.sort, limit=q.limit,
            offset=q.offset,
        )
    )
    return page_of(page)


@api.route("GET", "/print-jobs/<uuid:job_id>", permission="print_jobs.read", response=Item[PrintJobDetail],
           summary="A print job with its state transitions")
async def get_job(call: Call, job_id: uuid.UUID) -> Any:
    row = await call.db.run(print_jobs.get, call.tenant_id, job_id)
    row["transitions"] = await call.db.run(print_jobs.transitions, call.tenant_id, job_id)
    return item(row)


async def _control(call: Call, job_id: uuid.UUID, action: str, reason: str | None = None) -> Any:
    return item(await control_print_job(
        call.services, tenant_id=call.tenant_id, user_id=call.me.user_id, job_id=job_id, action=action,
        reason=reason, request_id=call.request_id,
    ))


@api.route("POST", "/print-jobs/<uuid:job_id>/pause", permission="print_jobs.manage", body=NoBody,
           response=Item[PrintJobOut], summary="Pause a printing job (409 unless printing)", errors=(404, 409))
async def pause_job(call: Call, job_id: uuid.UUID) -> Any:
    return await _control(call, job_id, "pause")


@api.route("POST", "/print-jobs/<uuid:job_id>/resume", permission="print_jobs.manage", body=NoBody,
           response=Item[PrintJobOut], summary="Resume a paused job (409 unless paused)", errors=(404, 409))
async def resume_job(call: Call, job_id: uuid.UUID) -> Any:
    return await _control(call, job_id, "resume")


@api.route("POST", "/print-jobs/<uuid:job_id>/cancel", permission="print_jobs.manage", body=CancelIn,
           response=Item[PrintJobOut], summary="Cancel a job that has not finished (409 when it has)",
           errors=(404, 409))
async def cancel_job(call: Call, job_id: uuid.UUID) -> Any:
    body: CancelIn = call.body
    return await _control(call, job_id, "cancel", body.reason)
