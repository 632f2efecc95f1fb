"""Tenants, and signup: a new tenant with its first owner, in one transaction."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

import asyncpg

from ensemble.errors import Conflict, NotFound

from . import audit
from ._common import Actor

__all__ = ["signup", "get_tenant", "slugify"]

TENANT_COLUMNS = "id, name, slug, created_at, updated_at"


def slugify(name: str) -> str:
    """A slug from a display name plus a random suffix, so two "Acme HVAC"s never collide."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-") or "tenant"
    return f"{base}-{secrets.token_hex(3)}"


async def signup(
    conn: asyncpg.Connection,
    *,
    email: str,
    name: str,
    password_hash: str,
    tenant_name: str,
    tenant_slug: str | None,
    request_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create user, tenant and owner membership; returns ``(user, tenant)``."""
    async with conn.transaction():
        try:
            user = await conn.fetchrow(
                "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id, email, name",
                email,
                name,
                password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "an account with this email already exists",
                details=[{"field": "email", "message": "already registered"}],
            ) from None
        slug = tenant_slug or slugify(tenant_name)
        try:
            tenant = await conn.fetchrow(
                f"INSERT INTO tenants (name, slug, created_by, updated_by) VALUES ($1, $2, $3, $3)"
                f" RETURNING {TENANT_COLUMNS}",
                tenant_name,
                slug,
                user["id"],
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("this tenant slug is taken", details=[{"field": "tenant_slug", "message": "taken"}]) from None
        await conn.execute(
            "UPDATE users SET created_by = $1, updated_by = $1 WHERE id = $1", user["id"]
        )
        await conn.execute(
            "INSERT INTO memberships (tenant_id, user_id, role, created_by, updated_by)"
            " VALUES ($1, $2, 'owner', $2, $2)",
            tenant["id"],
            user["id"],
        )
        actor = Actor(tenant_id=tenant["id"], user_id=user["id"], request_id=request_id)
        await audit.record(conn, actor, "create", "tenant", tenant["id"], {"slug": slug})
        await audit.record(conn, actor, "create", "member", user["id"], {"role": "owner"})
        return dict(user), dict(tenant)


async def get_tenant(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
    if row is None:
        raise NotFound("no such tenant")
    return dict(row)
