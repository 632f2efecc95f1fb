"""Clients: the customers and sites a field-service tenant works for."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import (
    Email,
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
from ensemble.persistence.repos import clients

api = Api("clients", tag="Clients")

Status = Literal["active", "inactive"]
Phone = Text(50)
Address = Text(1000)
Notes = Text(5000)


class ClientOut(ResponseModel):
    id: uuid.UUID
    name: str
    phone: str | None
    email: str | None
    address: str | None
    notes: str | None
    status: Status
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class ClientCreate(RequestModel):
    name: Name
    phone: Phone | None = None  # type: ignore[valid-type]
    email: Email | None = None
    address: Address | None = None  # type: ignore[valid-type]
    notes: Notes | None = None  # type: ignore[valid-type]
    status: Status = "active"


class ClientPatch(RequestModel):
    name: Name = optional()
    phone: Phone | None = None  # type: ignore[valid-type]
    email: Email | None = None
    address: Address | None = None  # type: ignore[valid-type]
    notes: Notes | None = None  # type: ignore[valid-type]
    status: Status = optional()


class ClientQuery(ListQuery):
    status: Status | None = None
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(clients.SORTS, "name") = None  # type: ignore[valid-type]


@api.route("GET", "/clients", permission="clients.read", query=ClientQuery, response=ItemList[ClientOut],
           summary="List clients (filter by status, search name/email/phone)")
async def list_clients(call: Call) -> Any:
    q: ClientQuery = call.query
    page = await call.db.run(
        lambda conn: clients.list_clients(
            conn, call.tenant_id, status=q.status, search=q.search, sort=q.sort, limit=q.limit, offset=q.offset
        )
    )
    return page_of(page)


@api.route("GET", "/clients/<uuid:client_id>", permission="clients.read", response=Item[ClientOut],
           summary="Get a client")
async def get_client(call: Call, client_id: uuid.UUID) -> Any:
    return item(await call.db.run(clients.get, call.tenant_id, client_id))


@api.route("POST", "/clients", permission="clients.write", body=ClientCreate, response=Item[ClientOut], status=201,
           summary="Create a client")
async def create_client(call: Call) -> Any:
    body: ClientCreate = call.body
    return item(await call.db.run(clients.create, call.actor, body.model_dump()))


@api.route("PATCH", "/clients/<uuid:client_id>", permission="clients.write", body=ClientPatch,
           response=Item[ClientOut], summary="Change a client (only the fields sent)")
async def update_client(call: Call, client_id: uuid.UUID) -> Any:
    body: ClientPatch = call.body
    return item(await call.db.run(clients.update, call.actor, client_id, body.changes()))


@api.route("DELETE", "/clients/<uuid:client_id>", permission="clients.delete",
           summary="Delete a client (its jobs go with it; its equipment stays, detached)")
async def delete_client(call: Call, client_id: uuid.UUID) -> None:
    await call.db.run(clients.delete, call.actor, client_id)
