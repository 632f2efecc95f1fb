"""Printers: per tenant, optionally behind one of its hubs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

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
from ensemble.persistence.repos import printers

api = Api("printers", tag="Printers")

ConnectionType = Literal["bambu", "prusa", "octoprint", "klipper", "opcua", "other"]
PrinterStatus = Literal["idle", "printing", "paused", "maintenance", "offline", "error"]
Short = Text(100)


class PrinterOut(ResponseModel):
    id: uuid.UUID
    hub_id: uuid.UUID | None
    name: str
    model: str
    manufacturer: str | None
    serial_number: str | None
    firmware_version: str | None
    connection_type: ConnectionType
    ip_address: str | None
    status: PrinterStatus
    location: str | None
    is_active: bool
    sort_order: int
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class PrinterCreate(RequestModel):
    name: Name
    model: Name
    hub_id: uuid.UUID | None = None
    manufacturer: Short | None = None  # type: ignore[valid-type]
    serial_number: Short | None = None  # type: ignore[valid-type]
    connection_type: ConnectionType = "bambu"
    ip_address: Short | None = None  # type: ignore[valid-type]
    location: Short | None = None  # type: ignore[valid-type]
    is_active: bool = True
    sort_order: int = Field(0, ge=-1_000_000, le=1_000_000)


class PrinterPatch(RequestModel):
    name: Name = optional()
    model: Name = optional()
    hub_id: uuid.UUID | None = None
    manufacturer: Short | None = None  # type: ignore[valid-type]
    serial_number: Short | None = None  # type: ignore[valid-type]
    connection_type: ConnectionType = optional()
    ip_address: Short | None = None  # type: ignore[valid-type]
    location: Short | None = None  # type: ignore[valid-type]
    is_active: bool = optional()
    sort_order: int = optional(ge=-1_000_000, le=1_000_000)


class PrinterQuery(ListQuery):
    hub_id: uuid.UUID | None = None
    status: PrinterStatus | None = None
    is_active: bool | None = None
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(printers.SORTS, "sort_order") = None  # type: ignore[valid-type]


@api.route("GET", "/printers", permission="printers.read", query=PrinterQuery, response=ItemList[PrinterOut],
           summary="List printers (filter by hub, status, active; search)")
async def list_printers(call: Call) -> Any:
    q: PrinterQuery = call.query
    page = await call.db.run(
        lambda conn: printers.list_printers(
            conn, call.tenant_id, hub_id=q.hub_id, status=q.status, is_active=q.is_active, search=q.search,
            sort=q.sort, limit=q.limit, offset=q.offset,
        )
    )
    return page_of(page)


@api.route("GET", "/printers/<uuid:printer_id>", permission="printers.read", response=Item[PrinterOut],
           summary="Get a printer")
async def get_printer(call: Call, printer_id: uuid.UUID) -> Any:
    return item(await call.db.run(printers.get, call.tenant_id, printer_id))


@api.route("POST", "/printers", permission="printers.write", body=PrinterCreate, response=Item[PrinterOut],
           status=201, summary="Add a printer", errors=(409,))
async def create_printer(call: Call) -> Any:
    body: PrinterCreate = call.body
    return item(await call.db.run(printers.create, call.actor, body.model_dump()))


@api.route("PATCH", "/printers/<uuid:printer_id>", permission="printers.write", body=PrinterPatch,
           response=Item[PrinterOut], summary="Change a printer (only the fields sent)", errors=(409,))
async def update_printer(call: Call, printer_id: uuid.UUID) -> Any:
    body: PrinterPatch = call.body
    return item(await call.db.run(printers.update, call.actor, printer_id, body.changes()))


@api.route("DELETE", "/printers/<uuid:printer_id>", permission="printers.write", summary="Remove a printer")
async def delete_printer(call: Call, printer_id: uuid.UUID) -> None:
    await call.db.run(printers.delete, call.actor, printer_id)
