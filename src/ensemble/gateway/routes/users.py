"""Members of the tenant (users, technicians): add or create, change role, remove."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ensemble.errors import Forbidden
from ensemble.gateway._permissions import Role, may_manage_owners
from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import (
    Email,
    Item,
    ItemList,
    ListQuery,
    Name,
    Password,
    RequestModel,
    ResponseModel,
    Text,
    sort_param,
)
from ensemble.persistence.repos import users

api = Api("users", tag="Users")

# The field-service document's "technicians": the people who work jobs.
TECHNICIAN_ROLES = [Role.TECHNICIAN.value, Role.OPERATOR.value]


class MemberOut(ResponseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class MemberCreate(RequestModel):
    email: Email
    role: Role
    name: Name | None = None
    password: Password | None = None


class MemberUpdate(RequestModel):
    role: Role


class MemberQuery(ListQuery):
    role: list[Role] | None = None
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(users.SORTS, "name") = None  # type: ignore[valid-type]


class TechnicianQuery(ListQuery):
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(users.SORTS, "name") = None  # type: ignore[valid-type]


@api.route("GET", "/users", permission="members.read", query=MemberQuery, response=ItemList[MemberOut],
           summary="List members of the tenant")
async def list_members(call: Call) -> Any:
    q: MemberQuery = call.query
    page = await call.db.run(
        lambda conn: users.list_members(
            conn, call.tenant_id, roles=[r.value for r in q.role] if q.role else None,
            search=q.search, sort=q.sort, limit=q.limit, offset=q.offset,
        )
    )
    return page_of(page)


@api.route("GET", "/technicians", permission="members.read", query=TechnicianQuery, response=ItemList[MemberOut],
           summary="List technicians (members with role technician or operator)")
async def list_technicians(call: Call) -> Any:
    q: TechnicianQuery = call.query
    page = await call.db.run(
        lambda conn: users.list_members(
            conn, call.tenant_id, roles=TECHNICIAN_ROLES, search=q.search, sort=q.sort, limit=q.limit, offset=q.offset
        )
    )
    return page_of(page)


@api.route("GET", "/users/<uuid:user_id>", permission="members.read", response=Item[MemberOut],
           summary="Get a member")
async def get_member(call: Call, user_id: uuid.UUID) -> Any:
    return item(await call.db.run(users.get_member, call.tenant_id, user_id))


@api.route(
    "POST", "/users", permission="members.manage", body=MemberCreate, response=Item[MemberOut], status=201,
    summary="Add a member: an existing account by email, or a new account (with password)",
    errors=(409,),
)
async def add_member(call: Call) -> Any:
    body: MemberCreate = call.body
    if body.role is Role.OWNER and not may_manage_owners(call.me.role):
        raise Forbidden("only an owner can make someone an owner")
    password_hash = await call.gw.passwords.hash(body.password) if body.password is not None else None
    member = await call.db.run(
        lambda conn: users.add_member(
            conn, call.actor, email=body.email, name=body.name, role=body.role.value, password_hash=password_hash
        )
    )
    return item(member)


@api.route(
    "PATCH", "/users/<uuid:user_id>", permission="members.manage", body=MemberUpdate, response=Item[MemberOut],
    summary="Change a member's role (the last owner cannot be demoted)", errors=(409,),
)
async def change_role(call: Call, user_id: uuid.UUID) -> Any:
    body: MemberUpdate = call.body
    member = await call.db.run(
        lambda conn: users.change_role(
            conn, call.actor, user_id, body.role.value, may_manage_owners=may_manage_owners(call.me.role)
        )
    )
    return item(member)


@api.route(
    "DELETE", "/users/<uuid:user_id>", permission="members.manage",
    summary="Remove a member from the tenant (the last owner cannot be removed)", errors=(409,),
)
async def remove_member(call: Call, user_id: uuid.UUID) -> None:
    manage_owners = may_manage_owners(call.me.role)
    await call.db.run(lambda conn: users.remove_member(conn, call.actor, user_id, may_manage_owners=manage_owners))
