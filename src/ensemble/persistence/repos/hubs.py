"""Hubs: provisioned unclaimed, claimed by a tenant with a short-lived code, released.

The hub protocol (``hubs/``, the ``HubConnection`` actor) builds on this
table: :func:`credentials` gives it the key to verify a hub's HMAC
handshake, :func:`issue_claim_code` the code an unclaimed hub shows its
owner, and :func:`mark_seen` the heartbeat bookkeeping.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from ensemble.errors import Conflict, NotFound

from . import audit
from ._common import Actor, Page, TenantTable, Where, fetch_page, like_pattern, order_clause

__all__ = [
    "TABLE",
    "SORTS",
    "CLAIM_CODE_ALPHABET",
    "new_claim_code",
    "claim_code_hash",
    "provision",
    "issue_claim_code",
    "claim",
    "get",
    "list_hubs",
    "rename",
    "release",
    "credentials",
    "mark_seen",
]

# No 0/O, 1/I/L or U: codes are read off a small screen and typed by hand.
CLAIM_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CLAIM_CODE_LENGTH = 8  # 30^8 ≈ 6.6e11 codes, valid for minutes, claims rate limited

TABLE = TenantTable(
    table="hubs",
    entity="hub",
    # Never hmac_key or the claim code hash: no API ever returns them.
    columns=(
        "id", "tenant_id", "name", "firmware_version", "hardware_revision", "last_seen_at", "is_online",
        "local_ip_address", "wifi_signal_strength", "claimed_at", "claimed_by",
        "created_at", "created_by", "updated_at", "updated_by",
    ),
    writable=frozenset({"name"}),
)
SORTS = {"name": "name", "created_at": "created_at", "claimed_at": "claimed_at", "last_seen_at": "last_seen_at"}


def new_claim_code() -> str:
    raw = "".join(secrets.choice(CLAIM_CODE_ALPHABET) for _ in range(CLAIM_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def claim_code_hash(code: str) -> bytes:
    normalised = "".join(ch for ch in code.upper() if ch not in "- ")
    return hashlib.sha256(b"ensemble.hub.claim\n" + normalised.encode("utf-8")).digest()


async def provision(
    conn: asyncpg.Connection,
    *,
    hub_id: uuid.UUID | None = None,
    hmac_key: bytes | None = None,
    firmware_version: str | None = None,
    hardware_revision: str | None = None,
) -> tuple[uuid.UUID, bytes]:
    """Register a factory-made hub (unclaimed); returns its id and secret key."""
    hub_id = hub_id or uuid.uuid4()
    hmac_key = hmac_key or secrets.token_bytes(32)
    try:
        await conn.execute(
            "INSERT INTO hubs (id, hmac_key, firmware_version, hardware_revision) VALUES ($1, $2, $3, $4)",
            hub_id,
            hmac_key,
            firmware_version,
            hardware_revision,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("a hub with this id is already provisioned") from None
    return hub_id, hmac_key


async def issue_claim_code(conn: asyncpg.Connection, hub_id: uuid.UUID, ttl_s: int) -> tuple[str, datetime]:
    """A fresh claim code for an unclaimed hub; replaces any earlier code."""
    for _ in range(3):
        code = new_claim_code()
        try:
            row = await conn.fetchrow(
                "UPDATE hubs SET claim_code_hash = $2, claim_code_expires_at = now() + make_interval(secs => $3),"
                "       updated_at = now()"
                " WHERE id = $1 AND tenant_id IS NULL RETURNING claim_code_expires_at",
                hub_id,
                claim_code_hash(code),
                float(ttl_s),
            )
        except asyncpg.UniqueViolationError:
            continue  # another live code hashes the same: draw again
        if row is None:
            raise Conflict("hub is unknown or already claimed")
        return code, row["claim_code_expires_at"]
    raise Conflict("could not draw a unique claim code, retry")


async def claim(conn: asyncpg.Connection, actor: Actor, code: str, name: str) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE hubs SET tenant_id = $2, name = $3, claim_code_hash = NULL, claim_code_expires_at = NULL,"
            "       claimed_at = now(), claimed_by = $4, updated_at = now(), updated_by = $4"
            " WHERE claim_code_hash = $1 AND claim_code_expires_at > now() AND tenant_id IS NULL"
            f" RETURNING {TABLE.select}",
            claim_code_hash(code),
            actor.tenant_id,
            name,
            actor.user_id,
        )
        if row is None:
            raise NotFound("no unclaimed hub has this claim code, or the code expired")
        await audit.record(conn, actor, "claim", "hub", row["id"], {"name": name})
        return dict(row)


async def get(conn: asyncpg.Connection, tenant_id: uuid.UUID, hub_id: uuid.UUID) -> dict[str, Any]:
    return await TABLE.get(conn, tenant_id, hub_id)


async def rename(conn: asyncpg.Connection, actor: Actor, hub_id: uuid.UUID, name: str) -> dict[str, Any]:
    return await TABLE.update(conn, actor, hub_id, {"name": name})


async def release(conn: asyncpg.Connection, actor: Actor, hub_id: uuid.UUID) -> None:
    """Give the hub up: it becomes unclaimed and its printers stay, detached."""
    async with conn.transaction():
        await TABLE.get(conn, actor.tenant_id, hub_id, lock=True)
        detached = await conn.execute(
            "UPDATE printers SET hub_id = NULL, updated_at = now(), updated_by = $3"
            " WHERE tenant_id = $1 AND hub_id = $2",
            actor.tenant_id,
            hub_id,
            actor.user_id,
        )
        await conn.execute(
            "UPDATE hubs SET tenant_id = NULL, name = NULL, claimed_at = NULL, claimed_by = NULL,"
            "       updated_at = now(), updated_by = $2 WHERE id = $1",
            hub_id,
            actor.user_id,
        )
        await audit.record(
            conn, actor, "release", "hub", hub_id, {"printers_detached": int(detached.rsplit(" ", 1)[1])}
        )


async def list_hubs(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    is_online: bool | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    where = Where("tenant_id", tenant_id)
    if is_online is not None:
        where.add("is_online = {}", is_online)
    if search:
        where.add("name ILIKE {}", like_pattern(search))
    return await fetch_page(
        conn, select=TABLE.select, table="hubs", where=where,
        order=order_clause(sort, SORTS, "name"), limit=limit, offset=offset,
    )


async def credentials(conn: asyncpg.Connection, hub_id: uuid.UUID) -> tuple[uuid.UUID | None, bytes] | None:
    """``(tenant_id or None if unclaimed, hmac_key)`` for the hub handshake, or None if unknown."""
    row = await conn.fetchrow("SELECT tenant_id, hmac_key FROM hubs WHERE id = $1", hub_id)
    if row is None:
        return None
    return row["tenant_id"], bytes(row["hmac_key"])


async def mark_seen(
    conn: asyncpg.Connection,
    hub_id: uuid.UUID,
    *,
    online: bool,
    firmware_version: str | None = None,
    local_ip_address: str | None = None,
    wifi_signal_strength: int | None = None,
) -> None:
    await conn.execute(
        "UPDATE hubs SET last_seen_at = now(), is_online = $2,"
        "       firmware_version = coalesce($3, firmware_version),"
        "       local_ip_address = coalesce($4, local_ip_address),"
        "       wifi_signal_strength = coalesce($5, wifi_signal_strength)"
        " WHERE id = $1",
        hub_id,
        online,
        firmware_version,
        local_ip_address,
        wifi_signal_strength,
    )
