"""Equipment: the units at client sites that jobs are about."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import (
    Item,
    ItemList,
    ListQuery,
    Name,
    RequestModel,
    ResponseModel,
    Text,
    optional,
    sort_param,
)
from ensemble.persistence.repos import equipment

api = Api("equipment", tag="Equipment")

Short = Text(100)
Notes = Text(5000)


class EquipmentOut(ResponseModel):
    id: uuid.UUID
    client_id: uuid.UUID | None
    name: str
    manufacturer: str | None
    model_number: str | None
    serial_number: str | None
    system_type: str | None
    install_date: date | None
    warranty_expiry: date | None
    notes: str | None
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class EquipmentCreate(RequestModel):
    name: Name
    client_id: uuid.UUID | None = None
    manufacturer: Short | None = None  # type: ignore[valid-type]
    model_number: Short | None = None  # type: ignore[valid-type]
    serial_number: Short | None = None  # type: ignore[valid-type]
    system_type: Short | None = None  # type: ignore[valid-type]
    install_date: date | None = None
    warranty_expiry: date | None = None
    notes: Notes | None = None  # type: ignore[valid-type]


class EquipmentPatch(RequestModel):
    name: Name = optional()
    manufacturer: Short | None = None  # type: ignore[valid-type]
    model_number: Short | None = None  # type: ignore[valid-type]
    serial_number: Short | None = None  # type: ignore[valid-type]
    system_type: Short | None = None  # type: ignore[valid-type]
    install_date: date | None = None
    warranty_expiry: date | None = None
    notes: Notes | None = None  # type: ignore[valid-type]


class AssignClient(RequestModel):
    client_id: uuid.UUID | None


class EquipmentQuery(ListQuery):
    client_id: uuid.UUID | None = None
    system_type: Text(100, 1) | None = None  # type: ignore[valid-type]
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(equipment.SORTS, "name") = None  # type: ignore[valid-type]


@api.route("GET", "/equipment", permission="equipment.read", query=EquipmentQuery, response=ItemList[EquipmentOut],
           summary="List equipment (filter by client, system type; search)")
async def list_equipment(call: Call) -> Any:
    q: EquipmentQuery = call.query
    page = await call.db.run(
        lambda conn: equipment.list_equipment(
            conn, call.tenant_id, client_id=q.client_id, system_type=q.system_type, search=q.search,
            sort=q.sort, limit=q.limit, offset=q.offset,
        )
    )
    return page_of(page)


@api.route("GET", "/equipment/<uuid:equipment_id>", permission="equipment.read", response=Item[EquipmentOut],
           summary="Get equipment")
async def get_equipment(call: Call, equipment_id: uuid.UUID) -> Any:
    return item(await call.db.run(equipment.get, call.tenant_id, equipment_id))


@api.route("POST", "/equipment", permission="equipment.write", body=EquipmentCreate, response=Item[EquipmentOut],
           status=201, summary="Create equipment")
async def create_equipment(call: Call) -> Any:
    body: EquipmentCreate = call.body
    return item(await call.db.run(equipment.create, call.actor, body.model_dump()))


@api.route("PATCH", "/equipment/<uuid:equipment_id>", permission="equipment.write", body=EquipmentPatch,
           response=Item[EquipmentOut], summary="Change equipment (only the fields sent)")
async def update_equipment(call: Call, equipment_id: uuid.UUID) -> Any:
    body: EquipmentPatch = call.body
    return item(await call.db.run(equipment.update, call.actor, equipment_id, body.changes()))


@api.route("POST", "/equipment/<uuid:equipment_id>/assign-client", permission="equipment.write", body=AssignClient,
           response=Item[EquipmentOut], summary="Assign equipment to a client (null detaches it)")
async def assign_client(call: Call, equipment_id: uuid.UUID) -> Any:
    body: AssignClient = call.body
    return item(await call.db.run(equipment.assign_client, call.actor, equipment_id, body.client_id))


@api.route("DELETE", "/equipment/<uuid:equipment_id>", permission="equipment.delete", summary="Delete equipment")
async def delete_equipment(call: Call, equipment_id: uuid.UUID) -> None:
    await call.db.run(equipment.delete, call.actor, equipment_id)
