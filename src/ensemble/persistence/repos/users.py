"""Users and their memberships: the members (technicians, operators, ...) of a tenant.

A user is global (one email, one password); a membership gives them a role
in one tenant.  Membership changes lock the tenant row first, which
serialises them per tenant: two admins demoting the last two owners at the
same time cannot both succeed.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ensemble.errors import Conflict, Forbidden, InvalidInput, NotFound

from . import audit, sessions
from ._common import Actor, Page, Where, fetch_page, like_pattern, order_clause

__all__ = [
    "find_for_login",
    "get_user",
    "memberships_of",
    "set_password_hash",
    "list_members",
    "get_member",
    "add_member",
    "change_role",
    "remove_member",
    "SORTS",
]

MEMBER_SELECT = (
    "u.id, u.email, u.name, u.is_active, m.role, m.tenant_id,"
    " m.created_at, m.created_by, m.updated_at, m.updated_by"
)
MEMBER_FROM = "memberships m JOIN users u ON u.id = m.user_id"
SORTS = {"name": "u.name", "email": "lower(u.email)", "role": "m.role", "created_at": "m.created_at"}


async def find_for_login(conn: asyncpg.Connection, email: str) -> dict[str, Any] | None:
    """The account and its memberships (``memberships`` key), in one crossing."""
    row = await conn.fetchrow(
        "SELECT id, email, name, password_hash, is_active FROM users WHERE lower(email) = lower($1)", email
    )
    if row is None:
        return None
    user = dict(row)
    user["memberships"] = await memberships_of(conn, row["id"])
    return user


async def get_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT id, email, name, is_active FROM users WHERE id = $1", user_id)
    if row is None:
        raise NotFound("no such user")
    user = dict(row)
    user["memberships"] = await memberships_of(conn, user_id)
    return user


async def memberships_of(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's tenants, oldest membership first (login's default pick)."""
    rows = await conn.fetch(
        "SELECT t.id AS tenant_id, t.name AS tenant_name, t.slug AS tenant_slug, m.role"
        "  FROM memberships m JOIN tenants t ON t.id = m.tenant_id"
        " WHERE m.user_id = $1 ORDER BY m.created_at, t.id",
        user_id,
    )
    return [dict(r) for r in rows]


async def set_password_hash(conn: asyncpg.Connection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, password_hash)


async def list_members(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    roles: list[str] | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("m.tenant_id", tenant_id)
    if roles:
        where.add("m.role = ANY({}::text[])", roles)
    if search:
        where.add("(u.name ILIKE {0} OR u.email ILIKE {0})", like_pattern(search))
    order = order_clause(sort, SORTS, "name", tiebreak="u.id")
    return await fetch_page(
        conn, select=MEMBER_SELECT, table=MEMBER_FROM, where=where, order=order, limit=limit, offset=offset
    )


async def get_member(conn: asyncpg.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {MEMBER_SELECT} FROM {MEMBER_FROM} WHERE m.tenant_id = $1 AND m.user_id = $2", tenant_id, user_id
    )
    if row is None:
        raise NotFound("no such member")
    return dict(row)


async def _lock_tenant(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
    await conn.execute("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", tenant_id)


async def _other_owners(conn: asyncpg.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner' AND user_id <> $2",
        tenant_id,
        user_id,
    )
    return count


async def add_member(
    conn: asyncpg.Connection,
    actor: Actor,
    *,
    email: str,
    name: str | None,
    role: str,
    password_hash: str | None,
) -> dict[str, Any]:
    """Add an existing account by email, or create the account (password required).

    An existing account is added as it is: its password and name belong to
    its owner, so a request that tries to set a password for it is refused
    rather than silently ignored.
    """
    async with conn.transaction():
        await _lock_tenant(conn, actor.tenant_id)
        user = await conn.fetchrow("SELECT id FROM users WHERE lower(email) = lower($1)", email)
        if user is None:
            if password_hash is None:
                raise InvalidInput(
                    "a new account needs a password",
                    details=[{"field": "password", "message": "required when the email has no account yet"}],
                )
            if name is None:
                raise InvalidInput(
                    "a new account needs a name",
                    details=[{"field": "name", "message": "required when the email has no account yet"}],
                )
            user_id = await conn.fetchval(
                "INSERT INTO users (email, name, password_hash, created_by, updated_by)"
                " VALUES ($1, $2, $3, $4, $4) RETURNING id",
                email,
                name,
                password_hash,
                actor.user_id,
            )
        else:
            if password_hash is not None:
                raise Conflict(
                    "an account with this email exists; add it without a password",
                    details=[{"field": "password", "message": "must be omitted for an existing account"}],
                )
            user_id = user["id"]
        try:
            await conn.execute(
                "INSERT INTO memberships (tenant_id, user_id, role, created_by, updated_by) VALUES ($1, $2, $3, $4, $4)",
                actor.tenant_id,
                user_id,
                role,
                actor.user_id,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("already a member of this tenant", details=[{"field": "email", "message": "already a member"}]) from None
        await audit.record(conn, actor, "create", "member", user_id, {"role": role})
        return await get_member(conn, actor.tenant_id, user_id)


async def change_role(
    conn: asyncpg.Connection, actor: Actor, user_id: uuid.UUID, role: str, *, may_manage_owners: bool
) -> dict[str, Any]:
    async with conn.transaction():
        await _lock_tenant(conn, actor.tenant_id)
        current = await get_member(conn, actor.tenant_id, user_id)
        if "owner" in (current["role"], role) and not may_manage_owners:
            raise Forbidden("only an owner can grant or revoke the owner role")
        if current["role"] == "owner" and role != "owner" and await _other_owners(conn, actor.tenant_id, user_id) == 0:
            raise Conflict("cannot demote the last owner of a tenant")
        if current["role"] == role:
            return current
        await conn.execute(
            "UPDATE memberships SET role = $3, updated_at = now(), updated_by = $4 WHERE tenant_id = $1 AND user_id = $2",
            actor.tenant_id,
            user_id,
            role,
            actor.user_id,
        )
        await audit.record(conn, actor, "update", "member", user_id, {"role": [current["role"], role]})
        return await get_member(conn, actor.tenant_id, user_id)


async def remove_member(
    conn: asyncpg.Connection, actor: Actor, user_id: uuid.UUID, *, may_manage_owners: bool
) -> None:
    async with conn.transaction():
        await _lock_tenant(conn, actor.tenant_id)
        current = await get_member(conn, actor.tenant_id, user_id)
        if current["role"] == "owner":
            if not may_manage_owners:
                raise Forbidden("only an owner can remove an owner")
            if await _other_owners(conn, actor.tenant_id, user_id) == 0:
                raise Conflict("cannot remove the last owner of a tenant")
        await conn.execute("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2", actor.tenant_id, user_id)
        # Their open jobs go back to dispatch rather than pointing at someone
        # who can no longer act on them.
        unassigned = await conn.execute(
            "UPDATE jobs SET status = 'unassigned', assigned_to = NULL, assigned_at = NULL, accepted_at = NULL,"
            "       updated_at = now(), updated_by = $3"
            " WHERE tenant_id = $1 AND assigned_to = $2 AND status IN ('assigned', 'accepted', 'declined', 'in_progress')",
            actor.tenant_id,
            user_id,
            actor.user_id,
        )
        revoked = await sessions.revoke_user_sessions(conn, user_id, actor.tenant_id, "membership_removed")
        await audit.record(
            conn,
            actor,
            "delete",
            "member",
            user_id,
            {"role": current["role"], "jobs_unassigned": int(unassigned.rsplit(" ", 1)[1]), "sessions_revoked": revoked},
        )
