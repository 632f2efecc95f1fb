"""Hubs: claim with the code the hub shows, rename, release."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import StringConstraints

from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import Item, ItemList, ListQuery, Name, RequestModel, ResponseModel, Text, sort_param
from ensemble.gateway.sockets.hubs import notify_hub_changed
from ensemble.persistence.repos import hubs

api = Api("hubs", tag="Hubs")

# Eight characters of the claim alphabet, optionally grouped with - or spaces.
ClaimCode = Annotated[str, StringConstraints(min_length=8, max_length=16, pattern=r"^[A-Za-z0-9 -]+$")]


class HubOut(ResponseModel):
    id: uuid.UUID
    name: str | None
    firmware_version: str | None
    hardware_revision: str | None
    last_seen_at: datetime | None
    is_online: bool
    local_ip_address: str | None
    wifi_signal_strength: int | None
    claimed_at: datetime | None
    claimed_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    updated_by: uuid.UUID | None


class ClaimIn(RequestModel):
    claim_code: ClaimCode
    name: Name


class RenameIn(RequestModel):
    name: Name


class NoBody(RequestModel):
    pass


class HubQuery(ListQuery):
    is_online: bool | None = None
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(hubs.SORTS, "name") = None  # type: ignore[valid-type]


@api.route("GET", "/hubs", permission="hubs.read", query=HubQuery, response=ItemList[HubOut],
           summary="List the tenant's hubs")
async def list_hubs(call: Call) -> Any:
    q: HubQuery = call.query
    page = await call.db.run(
        lambda conn: hubs.list_hubs(
            conn, call.tenant_id, is_online=q.is_online, search=q.search, sort=q.sort, limit=q.limit, offset=q.offset
        )
    )
    return page_of(page)


@api.route("GET", "/hubs/<uuid:hub_id>", permission="hubs.read", response=Item[HubOut], summary="Get a hub")
async def get_hub(call: Call, hub_id: uuid.UUID) -> Any:
    return item(await call.db.run(hubs.get, call.tenant_id, hub_id))


@api.route(
    "POST", "/hubs/claim", permission="hubs.manage", body=ClaimIn, response=Item[HubOut], status=201,
    summary="Claim an unclaimed hub with the short-lived code it shows",
    description="The code is single-use and expires (ENSEMBLE_HUB_CLAIM_CODE_TTL_S). A wrong or expired code is 404.",
    errors=(404,),
)
async def claim_hub(call: Call) -> Any:
    body: ClaimIn = call.body
    row = await call.db.run(hubs.claim, call.actor, body.claim_code, body.name)
    await notify_hub_changed(call.services, row["id"])  # a connected hub starts reporting to the tenant now
    return item(row)


@api.route("PATCH", "/hubs/<uuid:hub_id>", permission="hubs.manage", body=RenameIn, response=Item[HubOut],
           summary="Rename a hub")
async def rename_hub(call: Call, hub_id: uuid.UUID) -> Any:
    body: RenameIn = call.body
    return item(await call.db.run(hubs.rename, call.actor, hub_id, body.name))


@api.route("POST", "/hubs/<uuid:hub_id>/release", permission="hubs.manage", body=NoBody,
           summary="Release a hub: it becomes unclaimed; its printers stay, detached")
async def release_hub(call: Call, hub_id: uuid.UUID) -> None:
    await call.db.run(hubs.release, call.actor, hub_id)
    await notify_hub_changed(call.services, hub_id)  # cut the hub off at once
