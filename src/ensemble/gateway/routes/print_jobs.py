"""Print jobs: submit a print file to a printer, pause/resume/cancel, history.

A route checks the caller's tenant against Postgres, then asks the printer's
HubConnection actor: the actor owns the job's state machine and the command
to the hub; ``print_jobs`` is its projection, read back for the answer.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import datetime
from typing import Any, Literal

from quart import request

from ensemble.actors import Address
from ensemble.actors.hubs import HUB_KIND, job_states
from ensemble.errors import Conflict
from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import Item, ItemList, ListQuery, RequestModel, ResponseModel, Text, sort_param
from ensemble.persistence.objects import MAX_SIGNED_URL_TTL_S
from ensemble.persistence.repos import print_jobs

api = Api("print_jobs", tag="Print jobs")

JobStatus = Literal["queued", "uploading", "printing", "paused", "completed", "failed", "cancelled"]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_URL_MARGIN_S = 300  # the download link outlives the command's TTL by this much


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


def _hub(hub_id: Any) -> Address:
    return Address(HUB_KIND, str(hub_id))


async def _sha256(call: Call, file: dict[str, Any]) -> str:
    etag = (file.get("etag") or "").strip('"').lower()
    if _SHA256.fullmatch(etag):
        return etag  # the local store's etag is the SHA-256 of the bytes
    digest = hashlib.sha256()
    stream = await call.services.objects.scoped(call.tenant_id).get(file["object_key"])
    async with stream:
        async for chunk in stream:
            digest.update(chunk)
    return digest.hexdigest()


@api.route(
    "POST", "/print-jobs", permission="print_jobs.manage", body=PrintJobIn, response=Item[PrintJobOut], status=201,
    summary="Submit a print job: a print file from the object store to a printer behind a hub",
    description="The job starts queued; the hub gets a print_command with a signed download URL (re-sent after "
    "reconnects, failed after the command TTL). 409 when the printer has no hub or already has an active job.",
    errors=(404, 409),
)
async def submit_job(call: Call) -> Any:
    body: PrintJobIn = call.body
    ctx = await call.db.run(print_jobs.submission, call.tenant_id, body.printer_id, body.file_id)
    file = ctx["file"]
    settings = call.services.settings
    ttl = int(min(MAX_SIGNED_URL_TTL_S, settings.hub_command_ttl_s + _URL_MARGIN_S))
    url = await call.services.objects.scoped(call.tenant_id).signed_url(file["object_key"], ttl)
    if url.startswith("/"):  # the local store signs paths; the hub needs our origin
        url = request.host_url.rstrip("/") + url
    job_id, command_id = uuid.uuid4(), uuid.uuid4()
    await call.services.actors.ask(
        _hub(ctx["hub_id"]),
        {
            "type": "start_job",
            "tenant_id": str(call.tenant_id),
            "facts": ctx["facts"],
            "job": {
                "job_id": str(job_id),
                "printer_id": str(body.printer_id),
                "file_id": str(file["id"]),
                "file_name": file["name"],
                "file_size": int(file["size_bytes"]),
                "sha256": await _sha256(call, file),
                "file_url": url,
                "url_expires_at": int((time.time() + ttl) * 1000),
                "command_id": str(command_id),
                "submitted_by": str(call.me.user_id),
            },
        },
    )
    await call.db.run(print_jobs.audit_action, call.tenant_id, call.me.user_id, call.request_id, "submit", job_id,
                      {"printer_id": str(body.printer_id), "file_id": str(body.file_id)})
    return item(await call.db.run(print_jobs.get, call.tenant_id, job_id))


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
    row = await call.db.run(print_jobs.get, call.tenant_id, job_id)
    # The same pure table the actor uses: a finished job answers 409 here.
    job_states.check_action(row["status"], action)
    if row["hub_id"] is None:
        raise Conflict("the job's hub is gone")
    await call.services.actors.ask(
        _hub(row["hub_id"]),
        {"type": "job_control", "tenant_id": str(call.tenant_id), "job_id": str(job_id), "action": action,
         "command_id": str(uuid.uuid4()), "reason": reason},
    )
    await call.db.run(print_jobs.audit_action, call.tenant_id, call.me.user_id, call.request_id, action, job_id, None)
    return item(await call.db.run(print_jobs.get, call.tenant_id, job_id))


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
