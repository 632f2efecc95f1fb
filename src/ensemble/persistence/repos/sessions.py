"""Login sessions and refresh-token rotation with reuse detection.

Theory of operation
-------------------
A login opens a *session* (a refresh-token family) and issues its first
refresh token.  ``/auth/refresh`` presents a token; under a row lock we
check it, mark it used and issue its successor in the same session.  A
token that is presented again after it was used means two parties hold the
same token (one of them stole it): we cannot tell which one is legitimate,
so the whole session is revoked, and the access tokens naming it stop
working at once because every request checks its session
(:func:`session_role`).

Revocation must survive the refusal it causes, so :func:`rotate` never
raises on a bad token: it commits what it decided and returns the outcome
for the gateway to turn into a 401.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

__all__ = [
    "RotateOutcome",
    "create_session",
    "rotate",
    "revoke_session",
    "revoke_with_token",
    "revoke_user_sessions",
    "session_role",
    "purge_spent",
    "session_roles",
]

Outcome = Literal["ok", "invalid", "expired", "reused", "revoked"]


@dataclass(frozen=True)
class RotateOutcome:
    outcome: Outcome
    session_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    tenant_id: uuid.UUID | None = None
    role: str | None = None


async def create_session(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    token_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
    user_agent: str | None,
    ip_address: str | None,
) -> uuid.UUID:
    async with conn.transaction():
        session_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO auth_sessions (user_id, tenant_id, user_agent, ip_address)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            user_id,
            tenant_id,
            (user_agent or "")[:300] or None,
            ip_address,
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
            token_id,
            session_id,
            token_hash,
            expires_at,
        )
        return session_id


async def rotate(
    conn: asyncpg.Connection,
    *,
    token_id: uuid.UUID,
    token_hash: bytes,
    new_token_id: uuid.UUID,
    new_token_hash: bytes,
    new_expires_at: datetime,
) -> RotateOutcome:
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT t.token_hash, t.expires_at, t.used_at, s.id AS session_id, s.user_id, s.tenant_id,"
            "       s.revoked_at, t.expires_at <= now() AS expired"
            "  FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id"
            " WHERE t.id = $1 FOR UPDATE OF t, s",
            token_id,
        )
        # A wrong secret for a known id is "invalid", not "reused": revoking on
        # it would let anyone who learns a token id log its owner out.
        if row is None or not hmac.compare_digest(bytes(row["token_hash"]), token_hash):
            return RotateOutcome("invalid")
        ids = dict(session_id=row["session_id"], user_id=row["user_id"], tenant_id=row["tenant_id"])
        if row["revoked_at"] is not None:
            return RotateOutcome("revoked", **ids)
        if row["used_at"] is not None:
            await _revoke(conn, row["session_id"], "reuse")
            return RotateOutcome("reused", **ids)
        if row["expired"]:
            return RotateOutcome("expired", **ids)
        role = await _membership_role(conn, row["user_id"], row["tenant_id"])
        if role is None:
            await _revoke(conn, row["session_id"], "membership_removed")
            return RotateOutcome("revoked", **ids)
        await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", token_id)
        await conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
            new_token_id,
            row["session_id"],
            new_token_hash,
            new_expires_at,
        )
        await conn.execute("UPDATE auth_sessions SET refreshed_at = now() WHERE id = $1", row["session_id"])
        return RotateOutcome("ok", role=role, **ids)


async def _membership_role(conn: asyncpg.Connection, user_id: uuid.UUID, tenant_id: uuid.UUID) -> str | None:
    role: str | None = await conn.fetchval(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.user_id = $1 AND m.tenant_id = $2 AND u.is_active",
        user_id,
        tenant_id,
    )
    return role


async def _revoke(conn: asyncpg.Connection, session_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        reason,
    )


async def revoke_session(conn: asyncpg.Connection, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    status = await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'logout'"
        " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        session_id,
        user_id,
    )
    return bool(status != "UPDATE 0")


async def revoke_with_token(
    conn: asyncpg.Connection, *, token_id: uuid.UUID, token_hash: bytes, user_id: uuid.UUID
) -> bool:
    """Revoke the session of a refresh token the caller holds (it must be theirs)."""
    row = await conn.fetchrow(
        "SELECT t.token_hash, s.id FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id"
        " WHERE t.id = $1 AND s.user_id = $2",
        token_id,
        user_id,
    )
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), token_hash):
        return False
    await _revoke(conn, row["id"], "logout")
    return True


async def revoke_user_sessions(
    conn: asyncpg.Connection, user_id: uuid.UUID, tenant_id: uuid.UUID, reason: str
) -> int:
    status: str = await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $3"
        " WHERE user_id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
        user_id,
        tenant_id,
        reason,
    )
    return int(status.rsplit(" ", 1)[1])


async def session_role(
    conn: asyncpg.Connection, session_id: uuid.UUID, user_id: uuid.UUID, tenant_id: uuid.UUID
) -> str | None:
    """The caller's current role if the session is live and the membership stands, else None.

    Checked on every authenticated request, so a logout, a removal or a role
    change takes effect immediately rather than when the access token expires.
    """
    role: str | None = await conn.fetchval(
        "SELECT m.role FROM auth_sessions s"
        "  JOIN memberships m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id"
        "  JOIN users u ON u.id = s.user_id"
        " WHERE s.id = $1 AND s.user_id = $2 AND s.tenant_id = $3 AND s.revoked_at IS NULL AND u.is_active",
        session_id,
        user_id,
        tenant_id,
    )
    return role


async def purge_spent(conn: asyncpg.Connection, *, grace_s: float) -> tuple[int, int]:
    """Delete refresh tokens expired more than ``grace_s`` ago, then the sessions left without any.

    An expired token can no longer refresh, so it is only history; a session
    whose tokens are all gone can issue nothing, and every access token it
    issued expired long before (the grace is far longer than an access
    token's life), so deleting it cannot end anything still in use.  Returns
    (tokens, sessions) deleted.
    """
    async with conn.transaction():
        tokens = await conn.fetchval(
            "WITH gone AS (DELETE FROM refresh_tokens WHERE expires_at < now() - make_interval(secs => $1)"
            " RETURNING 1) SELECT count(*) FROM gone",
            float(grace_s),
        )
        sessions = await conn.fetchval(
            "WITH gone AS (DELETE FROM auth_sessions s WHERE s.created_at < now() - make_interval(secs => $1)"
            " AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id) RETURNING 1)"
            " SELECT count(*) FROM gone",
            float(grace_s),
        )
    return int(tokens), int(sessions)


async def session_roles(
    conn: asyncpg.Connection, keys: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]
) -> dict[uuid.UUID, str]:
    """:func:`session_role` for many ``(session_id, user_id, tenant_id)`` at once.

    One query for every open socket of a process; a session absent from the
    answer has ended (logout, reuse, removal, deactivated account).
    """
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT s.id, m.role FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS k(sid, uid, tid)"
        "  JOIN auth_sessions s ON s.id = k.sid AND s.user_id = k.uid AND s.tenant_id = k.tid"
        "  JOIN memberships m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id"
        "  JOIN users u ON u.id = s.user_id"
        " WHERE s.revoked_at IS NULL AND u.is_active",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
    )
    return {row["id"]: row["role"] for row in rows}
