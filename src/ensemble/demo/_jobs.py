"""Print jobs for the demo, made by the same code as ``POST /api/v1/print-jobs``.

``ensemble.printing`` holds the steps the REST routes run; these wrappers
act as the demo owner, so a demo job is indistinguishable from one a person
submitted (its audit entries name the request id ``ensemble-demo``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ensemble.actors import Address
from ensemble.actors.hubs import HUB_KIND
from ensemble.printing import control_print_job
from ensemble.printing import submit_print_job as _submit

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["submit_print_job", "cancel_print_job", "describe_hub"]

_REQUEST_ID = "ensemble-demo"


async def submit_print_job(
    services: Services, *, tenant_id: uuid.UUID, user_id: uuid.UUID, printer_id: uuid.UUID, file_id: uuid.UUID,
    origin: str,
) -> dict[str, Any]:
    """Submit a job as ``user_id`` (queued; the hub gets the print command); the ``print_jobs`` row."""
    return await _submit(services, tenant_id=tenant_id, user_id=user_id, printer_id=printer_id, file_id=file_id,
                         origin=origin, request_id=_REQUEST_ID)


async def cancel_print_job(
    services: Services, *, tenant_id: uuid.UUID, user_id: uuid.UUID, job_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    """Cancel a job as ``user_id``, with a reason; the ``print_jobs`` row after it."""
    return await control_print_job(services, tenant_id=tenant_id, user_id=user_id, job_id=job_id, action="cancel",
                                   reason=reason, request_id=_REQUEST_ID)


async def describe_hub(services: Services, hub_id: str) -> dict[str, Any]:
    """The hub actor's own view: ``{hub, tenant_id, printers, jobs (active), pending_commands, last_seq}``."""
    reply: dict[str, Any] = await services.actors.ask(Address(HUB_KIND, str(hub_id)), {"type": "describe"})
    return reply
