"""Signup, login, refresh (rotating), logout, and who-am-I."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import StringConstraints
from quart import request

from ensemble.errors import Forbidden, Unauthenticated
from ensemble.gateway._permissions import PERMISSIONS, PUBLIC, allows
from ensemble.gateway._routing import Api, Call, item
from ensemble.gateway._tokens import RefreshToken
from ensemble.gateway._validation import Email, Item, Name, Password, RequestModel, ResponseModel, Text
from ensemble.persistence.repos import sessions, tenants, users

api = Api("auth", tag="Auth")

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class SignupIn(RequestModel):
    email: Email
    password: Password
    name: Name
    tenant_name: Name
    tenant_slug: Slug | None = None


class LoginIn(RequestModel):
    email: Email
    # Not the signup policy: only bounded, so that old passwords still work.
    password: Text(1024, 1)  # type: ignore[valid-type]
    tenant_id: uuid.UUID | None = None


class RefreshIn(RequestModel):
    refresh_token: Text(200, 1)  # type: ignore[valid-type]


class LogoutIn(RequestModel):
    refresh_token: Text(200, 1) | None = None  # type: ignore[valid-type]


class UserOut(ResponseModel):
    id: uuid.UUID
    email: str
    name: str


class TenantOut(ResponseModel):
    id: uuid.UUID
    name: str
    slug: str


class MembershipOut(ResponseModel):
    tenant_id: uuid.UUID
    tenant_name: str
    tenant_slug: str
    role: str


class TokensOut(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    tenant_id: uuid.UUID
    role: str


class SessionOut(TokensOut):
    user: UserOut
    tenant: TenantOut
    tenants: list[MembershipOut]


class MeOut(ResponseModel):
    user: UserOut
    tenant: TenantOut
    role: str
    # What this role may do, so a client (the console) can hide what it
    # cannot use; the server still checks every call.
    permissions: list[str]
    tenants: list[MembershipOut]


async def _open_session(call: Call, user: dict[str, Any], membership: dict[str, Any], memberships: list[dict[str, Any]]) -> dict[str, Any]:
    settings = call.services.settings
    token = RefreshToken.new()
    user_agent = request.headers.get("User-Agent")  # read here: the lambda runs on the asyncio thread
    session_id = await call.db.run(
        lambda conn: sessions.create_session(
            conn,
            user_id=user["id"],
            tenant_id=membership["tenant_id"],
            token_id=token.token_id,
            token_hash=token.hash,
            expires_at=datetime.now(timezone.utc) + timedelta(seconds=settings.refresh_token_ttl_s),
            user_agent=user_agent,
            ip_address=call.ip,
        )
    )
    access = call.gw.tokens.issue_access(
        user_id=user["id"], tenant_id=membership["tenant_id"], session_id=session_id, role=membership["role"]
    )
    return {
        "access_token": access,
        "refresh_token": str(token),
        "expires_in": settings.access_token_ttl_s,
        "tenant_id": membership["tenant_id"],
        "role": membership["role"],
        "user": user,
        "tenant": {"id": membership["tenant_id"], "name": membership["tenant_name"], "slug": membership["tenant_slug"]},
        "tenants": memberships,
    }


@api.route(
    "POST", "/auth/signup", permission=PUBLIC, rate="auth", body=SignupIn, response=Item[SessionOut], status=201,
    summary="Create a tenant and its owner, and log in",
    errors=(409,),
)
async def signup(call: Call) -> Any:
    body: SignupIn = call.body
    password_hash = await call.gw.passwords.hash(body.password)
    user, tenant = await call.db.run(
        lambda conn: tenants.signup(
            conn,
            email=body.email,
            name=body.name,
            password_hash=password_hash,
            tenant_name=body.tenant_name,
            tenant_slug=body.tenant_slug,
            request_id=call.request_id,
        )
    )
    membership = {"tenant_id": tenant["id"], "tenant_name": tenant["name"], "tenant_slug": tenant["slug"], "role": "owner"}
    return item(await _open_session(call, user, membership, [membership]))


@api.route(
    "POST", "/auth/login", permission=PUBLIC, rate="auth", body=LoginIn, response=Item[SessionOut],
    summary="Log in; the token names your first tenant, or tenant_id",
    errors=(401, 403),
)
async def login(call: Call) -> Any:
    body: LoginIn = call.body
    gw = call.gw
    user = await call.db.run(users.find_for_login, body.email)
    ok = await gw.passwords.verify(user["password_hash"] if user else None, body.password)
    if user is None or not ok or not user["is_active"]:
        raise Unauthenticated("wrong email or password")
    if gw.passwords.needs_rehash(user["password_hash"]):
        new_hash = await gw.passwords.hash(body.password)
        await call.db.run(users.set_password_hash, user["id"], new_hash)
    memberships = user.pop("memberships")
    if not memberships:
        raise Forbidden("this account belongs to no tenant")
    if body.tenant_id is None:
        membership = memberships[0]
    else:
        matching = [m for m in memberships if m["tenant_id"] == body.tenant_id]
        if not matching:
            raise Forbidden("this account is not a member of that tenant")
        membership = matching[0]
    return item(await _open_session(call, user, membership, memberships))


@api.route(
    "POST", "/auth/refresh", permission=PUBLIC, rate="auth", body=RefreshIn, response=Item[TokensOut],
    summary="Trade a refresh token for a new pair (the old one stops working)",
    description=(
        "Refresh tokens are single-use. Presenting one that was already used revokes the whole "
        "login session: every refresh and access token of it stops working."
    ),
    errors=(401,),
)
async def refresh(call: Call) -> Any:
    body: RefreshIn = call.body
    settings = call.services.settings
    presented = RefreshToken.parse(body.refresh_token)
    successor = RefreshToken.new()
    result = await call.db.run(
        lambda conn: sessions.rotate(
            conn,
            token_id=presented.token_id,
            token_hash=presented.hash,
            new_token_id=successor.token_id,
            new_token_hash=successor.hash,
            new_expires_at=datetime.now(timezone.utc) + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    if result.outcome == "reused":
        raise Unauthenticated("refresh token was already used; the session is revoked, log in again")
    if result.outcome != "ok":
        raise Unauthenticated(
            {"expired": "refresh token expired", "revoked": "session ended"}.get(result.outcome, "invalid refresh token")
        )
    assert result.user_id and result.tenant_id and result.session_id and result.role
    access = call.gw.tokens.issue_access(
        user_id=result.user_id, tenant_id=result.tenant_id, session_id=result.session_id, role=result.role
    )
    return item({
        "access_token": access,
        "refresh_token": str(successor),
        "expires_in": settings.access_token_ttl_s,
        "tenant_id": result.tenant_id,
        "role": result.role,
    })


@api.route(
    "POST", "/auth/logout", permission="self", body=LogoutIn, rate="api",
    summary="End this login session (and the one of refresh_token, if given)",
)
async def logout(call: Call) -> None:
    body: LogoutIn = call.body
    me = call.me
    await call.db.run(sessions.revoke_session, me.session_id, me.user_id)
    if body.refresh_token:
        try:
            token = RefreshToken.parse(body.refresh_token)
        except Unauthenticated:
            return  # logging out with a garbled token still logs out this session
        await call.db.run(
            lambda conn: sessions.revoke_with_token(conn, token_id=token.token_id, token_hash=token.hash, user_id=me.user_id)
        )


@api.route("GET", "/me", permission="self", response=Item[MeOut], summary="The caller, their tenant and role")
async def me(call: Call) -> Any:
    user = await call.db.run(users.get_user, call.me.user_id)
    memberships = user.pop("memberships")
    current = next((m for m in memberships if m["tenant_id"] == call.tenant_id), None)
    if current is None:  # removed between the session check and now
        raise Unauthenticated("session ended: log in again")
    tenant = {"id": current["tenant_id"], "name": current["tenant_name"], "slug": current["tenant_slug"]}
    permissions = sorted(name for name in PERMISSIONS if allows(call.me.role, name))
    return item({"user": user, "tenant": tenant, "role": call.me.role, "permissions": permissions, "tenants": memberships})
