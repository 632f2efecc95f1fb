"""Submitting and controlling print jobs: the steps behind ``/api/v1/print-jobs``.

Shared by the REST routes and the demo, so a demo job is made exactly as a
person's.  Each step checks the tenant against Postgres, then asks the
printer's ``HubConnection`` actor, which owns the job's state machine and the
command to the hub; ``print_jobs`` is its projection, read back for the answer.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from ensemble.actors import Address
from ensemble.actors.hubs import HUB_KIND, job_states
from ensemble.errors import Conflict
from ensemble.persistence.objects import MAX_SIGNED_URL_TTL_S
from ensemble.persistence.repos import print_jobs

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["submit_print_job", "control_print_job"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_URL_MARGIN_S = 300  # the download link outlives the command's TTL by this much


def _hub(hub_id: Any) -> Address:
    return Address(HUB_KIND, str(hub_id))


async def _sha256(services: Services, tenant_id: uuid.UUID, file: dict[str, Any]) -> str:
    etag = (file.get("etag") or "").strip('"').lower()
    if _SHA256.fullmatch(etag):
        return etag  # the local store's etag is the SHA-256 of the bytes
    digest = hashlib.sha256()
    stream = await services.objects.scoped(tenant_id).get(file["object_key"])
    async with stream:
        async for chunk in stream:
            digest.update(chunk)
    return digest.hexdigest()


async def submit_print_job(
    services: Services, *, tenant_id: uuid.UUID, user_id: uuid.UUID, printer_id: uuid.UUID, file_id: uuid.UUID,
    origin: str, request_id: str,
) -> dict[str, Any]:
    """Queue a job; the hub gets a print command with a signed download URL.

    ``origin`` (``http://host:port``) prefixes a signed *path* (the local
    store signs paths; the hub needs our address).  Raises ``NotFound`` for a
    printer or file of another tenant and ``Conflict`` when the printer has no
    hub or already has an active job.  Returns the ``print_jobs`` row.
    """
    ctx = await services.db.run(print_jobs.submission, tenant_id, printer_id, file_id)
    file = ctx["file"]
    ttl = int(min(MAX_SIGNED_URL_TTL_S, services.settings.hub_command_ttl_s + _URL_MARGIN_S))
    url = await services.objects.scoped(tenant_id).signed_url(file["object_key"], ttl)
    if url.startswith("/"):
        url = origin.rstrip("/") + url
    job_id, command_id = uuid.uuid4(), uuid.uuid4()
    await services.actors.ask(
        _hub(ctx["hub_id"]),
        {
            "type": "start_job",
            "tenant_id": str(tenant_id),
            "facts": ctx["facts"],
            "job": {
                "job_id": str(job_id),
                "printer_id": str(printer_id),
                "file_id": str(file["id"]),
                "file_name": file["name"],
                "file_size": int(file["size_bytes"]),
                "sha256": await _sha256(services, tenant_id, file),
                "file_url": url,
                "url_expires_at": int((time.time() + ttl) * 1000),
                "command_id": str(command_id),
                "submitted_by": str(user_id),
            },
        },
    )
    await services.db.run(print_jobs.audit_action, tenant_id, user_id, request_id, "submit", job_id,
                          {"printer_id": str(printer_id), "file_id": str(file_id)})
    row: dict[str, Any] = await services.db.run(print_jobs.get, tenant_id, job_id)
    return row


async def control_print_job(
    services: Services, *, tenant_id: uuid.UUID, user_id: uuid.UUID, job_id: uuid.UUID, action: str,
    request_id: str, reason: str | None = None,
) -> dict[str, Any]:
    """Pause, resume or cancel a job; the ``print_jobs`` row after it.

    The same pure table the actor uses decides first, so a finished job is a
    ``Conflict`` here without a round trip to the hub's actor.
    """
    row = await services.db.run(print_jobs.get, tenant_id, job_id)
    job_states.check_action(row["status"], action)
    if row["hub_id"] is None:
        raise Conflict("the job's hub is gone")
    await services.actors.ask(
        _hub(row["hub_id"]),
        {"type": "job_control", "tenant_id": str(tenant_id), "job_id": str(job_id), "action": action,
         "command_id": str(uuid.uuid4()), "reason": reason},
    )
    await services.db.run(print_jobs.audit_action, tenant_id, user_id, request_id, action, job_id, None)
    after: dict[str, Any] = await services.db.run(print_jobs.get, tenant_id, job_id)
    return after
