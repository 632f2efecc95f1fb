"""Print jobs for the demo, made the way ``POST /api/v1/print-jobs`` makes them.

The REST routes (``gateway/routes/print_jobs.py``) check the tenant against
Postgres, sign a download URL and ask the hub's ``HubConnection`` actor;
these helpers do the same steps with the demo owner as the acting user, so a
demo job is indistinguishable from one a person submitted.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from ensemble.actors import Address
from ensemble.actors.hubs import HUB_KIND, job_states
from ensemble.persistence.objects import MAX_SIGNED_URL_TTL_S
from ensemble.persistence.repos import print_jobs

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["submit_print_job", "cancel_print_job", "describe_hub"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_URL_MARGIN_S = 300  # as the route: the download link outlives the command's TTL
_REQUEST_ID = "ensemble-demo"


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
    origin: str,
) -> dict[str, Any]:
    """Submit a job (queued; the hub gets the print command); the ``print_jobs`` row.

    ``origin`` (``http://host:port``) prefixes the local store's signed path,
    as the route does with the request's host.  Raises ``Conflict`` when the
    printer already has an active job, like the route (409).
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
    await services.db.run(print_jobs.audit_action, tenant_id, user_id, _REQUEST_ID, "submit", job_id,
                          {"printer_id": str(printer_id), "file_id": str(file_id)})
    return await services.db.run(print_jobs.get, tenant_id, job_id)


async def cancel_print_job(
    services: Services, *, tenant_id: uuid.UUID, user_id: uuid.UUID, job_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    """``POST /print-jobs/{id}/cancel`` with a reason; the ``print_jobs`` row after it."""
    row = await services.db.run(print_jobs.get, tenant_id, job_id)
    job_states.check_action(row["status"], "cancel")
    await services.actors.ask(
        _hub(row["hub_id"]),
        {"type": "job_control", "tenant_id": str(tenant_id), "job_id": str(job_id), "action": "cancel",
         "command_id": str(uuid.uuid4()), "reason": reason},
    )
    await services.db.run(print_jobs.audit_action, tenant_id, user_id, _REQUEST_ID, "cancel", job_id, None)
    return await services.db.run(print_jobs.get, tenant_id, job_id)


async def describe_hub(services: Services, hub_id: str) -> dict[str, Any]:
    """The hub actor's own view: ``{hub, tenant_id, printers, jobs (active), pending_commands, last_seq}``."""
    reply: dict[str, Any] = await services.actors.ask(_hub(hub_id), {"type": "describe"})
    return reply
