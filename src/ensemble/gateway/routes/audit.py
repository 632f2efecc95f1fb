"""The audit log: read-only, for the tenant's admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ensemble.gateway._routing import Api, Call, page_of
from ensemble.gateway._validation import ItemList, ListQuery, ResponseModel, Text, Timestamp, sort_param
from ensemble.persistence.repos import audit

api = Api("audit", tag="Audit")


class AuditEntryOut(ResponseModel):
    id: int
    actor_id: uuid.UUID | None
    action: str
    entity: str
    entity_id: str
    at: datetime
    request_id: str | None
    details: dict[str, Any] | None


class AuditQuery(ListQuery):
    entity: Text(50, 1) | None = None  # type: ignore[valid-type]
    entity_id: Text(100, 1) | None = None  # type: ignore[valid-type]
    actor_id: uuid.UUID | None = None
    action: Text(50, 1) | None = None  # type: ignore[valid-type]
    since: Timestamp | None = None
    until: Timestamp | None = None
    sort: sort_param(audit.SORTS, "-at") = None  # type: ignore[valid-type]


@api.route("GET", "/audit", permission="audit.read", query=AuditQuery, response=ItemList[AuditEntryOut],
           summary="Who changed what, when (newest first)")
async def list_audit(call: Call) -> Any:
    q: AuditQuery = call.query
    page = await call.db.run(
        lambda conn: audit.list_entries(
            conn, call.tenant_id, entity=q.entity, entity_id=q.entity_id, actor_id=q.actor_id, action=q.action,
            since=q.since, until=q.until, sort=q.sort, limit=q.limit, offset=q.offset,
        )
    )
    return page_of(page)
