"""Manuals (knowledge documents) and the AI gateway's tables: response cache, usage ledger, request windows.

A document's scope is its ``tenant_id``; ``None`` is a global manual that
every tenant reads and only the platform operator (the CLI) writes.
Readers go through :func:`get_visible` / :func:`list_visible` (global + own,
never another tenant's); writers name the scope exactly.

Any change to a scope's manuals clears the cached answers that could have
quoted them (the tenant's, or everyone's for a global manual), in the same
transaction: a cached answer never outlives the manual it cites.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg

from ensemble.errors import InvalidInput, NotFound

from . import audit
from ._common import Actor, Page, like_pattern, map_constraint_errors, order_clause

__all__ = [
    "COLUMNS",
    "SORTS",
    "find_for_ingest",
    "save_document",
    "delete_document",
    "get_visible",
    "get_in_scope",
    "list_visible",
    "manifest",
    "resolve_tenant",
    "cache_lookup",
    "take_request",
    "record_usage",
    "usage_report",
]

# The scope of global manuals in expression indexes (see migration 0003).
NIL = uuid.UUID(int=0)
SCOPE = "coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)"

COLUMNS = (
    "id", "tenant_id", "source", "filename", "media_type", "format", "content_hash", "size_bytes",
    "manufacturer", "model", "equipment_type", "category", "updated_on", "metadata", "pages", "chunks",
    "object_key", "version", "created_at", "created_by", "updated_at", "updated_by",
)
_SELECT = ", ".join(COLUMNS)
_WRITABLE = frozenset({
    "source", "filename", "media_type", "format", "content_hash", "size_bytes", "manufacturer", "model",
    "equipment_type", "category", "updated_on", "metadata", "pages", "chunks", "object_key",
})
_UNIQUE = {
    "knowledge_documents_hash_key": ("file", "this exact file is already in the knowledge base"),
    "knowledge_documents_source_key": ("source", "another manual with this source name is being saved; retry"),
}
SORTS = {"source": "lower(source)", "created_at": "created_at", "updated_at": "updated_at", "manufacturer": "lower(manufacturer)"}


def _scope(tenant_id: uuid.UUID | None) -> uuid.UUID:
    return tenant_id or NIL


# -- documents ------------------------------------------------------------------------


async def find_for_ingest(
    conn: asyncpg.Connection, tenant_id: uuid.UUID | None, content_hash: str, source: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(same bytes, same source name)`` in the scope: an unchanged re-ingest, or the manual a new version replaces."""
    rows = await conn.fetch(
        f"SELECT {_SELECT}, content_hash = $2 AS same_bytes FROM knowledge_documents"
        f" WHERE {SCOPE} = $1 AND (content_hash = $2 OR lower(source) = lower($3))",
        _scope(tenant_id), content_hash, source or "",
    )
    by_hash = next((dict(r) for r in rows if r["same_bytes"]), None)
    by_source = next((dict(r) for r in rows if not r["same_bytes"]), None)
    for row in (by_hash, by_source):
        if row is not None:
            row.pop("same_bytes", None)
    return by_hash, by_source


async def _invalidate_answers(conn: asyncpg.Connection, tenant_id: uuid.UUID | None) -> None:
    if tenant_id is None:
        await conn.execute("DELETE FROM ai_response_cache")
    else:
        await conn.execute("DELETE FROM ai_response_cache WHERE tenant_id = $1", tenant_id)


async def save_document(
    conn: asyncpg.Connection,
    actor: Actor | None,
    tenant_id: uuid.UUID | None,
    document_id: uuid.UUID,
    values: Mapping[str, Any],
    *,
    replacing: bool,
) -> dict[str, Any]:
    """Insert a manual, or replace the stored version of ``document_id`` (version + 1)."""
    unknown = set(values) - _WRITABLE
    if unknown:
        raise InvalidInput(f"cannot set {sorted(unknown)}")
    user_id = actor.user_id if actor is not None else None
    names = list(values)
    async with conn.transaction():
        with map_constraint_errors(unique=_UNIQUE):
            if replacing:
                assignments = ", ".join(f"{name} = ${i + 4}" for i, name in enumerate(names))
                row = await conn.fetchrow(
                    f"UPDATE knowledge_documents SET {assignments}, version = version + 1, updated_at = now(),"
                    f" updated_by = $3 WHERE id = $1 AND {SCOPE} = $2 RETURNING {_SELECT}",
                    document_id, _scope(tenant_id), user_id, *values.values(),
                )
                if row is None:
                    raise NotFound("no such document")
            else:
                cols = ["id", "tenant_id", "created_by", "updated_by", *names]
                placeholders = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
                row = await conn.fetchrow(
                    f"INSERT INTO knowledge_documents ({', '.join(cols)}) VALUES ({placeholders}) RETURNING {_SELECT}",
                    document_id, tenant_id, user_id, user_id, *values.values(),
                )
        await _invalidate_answers(conn, tenant_id)
        if actor is not None and tenant_id is not None:
            await audit.record(
                conn, actor, "update" if replacing else "create", "knowledge_document", document_id,
                {"source": values.get("source"), "content_hash": values.get("content_hash")},
            )
        return dict(row)


async def delete_document(
    conn: asyncpg.Connection, actor: Actor | None, tenant_id: uuid.UUID | None, document_id: uuid.UUID
) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"DELETE FROM knowledge_documents WHERE id = $1 AND {SCOPE} = $2 RETURNING {_SELECT}",
            document_id, _scope(tenant_id),
        )
        if row is None:
            raise NotFound("no such document")
        await _invalidate_answers(conn, tenant_id)
        if actor is not None and tenant_id is not None:
            await audit.record(conn, actor, "delete", "knowledge_document", document_id, {"source": row["source"]})
        return dict(row)


async def get_visible(conn: asyncpg.Connection, viewer: uuid.UUID | None, document_id: uuid.UUID) -> dict[str, Any]:
    """A manual the viewer may read: global, or the viewer's own (another tenant's does not exist for it)."""
    row = await conn.fetchrow(
        f"SELECT {_SELECT} FROM knowledge_documents WHERE id = $1 AND (tenant_id IS NULL OR tenant_id = $2)",
        document_id, viewer,
    )
    if row is None:
        raise NotFound("no such document")
    return dict(row)


async def get_in_scope(conn: asyncpg.Connection, tenant_id: uuid.UUID | None, document_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {_SELECT} FROM knowledge_documents WHERE id = $1 AND {SCOPE} = $2", document_id, _scope(tenant_id)
    )
    if row is None:
        raise NotFound("no such document")
    return dict(row)


async def list_visible(
    conn: asyncpg.Connection,
    viewer: uuid.UUID | None,
    *,
    scope: str = "all",
    manufacturer: str | None = None,
    equipment_type: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Global manuals and the viewer's own; ``scope`` narrows to ``global`` or ``tenant``."""
    args: list[Any] = []
    parts: list[str] = []

    def add(sql: str, value: Any) -> None:
        # Only parameters the SQL uses: Postgres cannot type an unused one.
        args.append(value)
        parts.append(sql.format(f"${len(args)}"))

    if scope == "global":
        parts.append("tenant_id IS NULL")
    elif scope == "tenant":
        add("tenant_id = {}::uuid", viewer)
    else:
        add("(tenant_id IS NULL OR tenant_id = {}::uuid)", viewer)

    if manufacturer:
        add("lower(manufacturer) = lower({})", manufacturer)
    if equipment_type:
        add("lower(equipment_type) = lower({})", equipment_type)
    if search:
        add("(source ILIKE {0} OR filename ILIKE {0} OR model ILIKE {0})", like_pattern(search))
    where = " AND ".join(parts)
    order = order_clause(sort, SORTS, "source")
    n = len(args)
    rows = await conn.fetch(
        f"SELECT {_SELECT} FROM knowledge_documents WHERE {where} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args, limit, offset,
    )
    total = len(rows) if offset == 0 and len(rows) < limit else await conn.fetchval(
        f"SELECT count(*) FROM knowledge_documents WHERE {where}", *args
    )
    return Page(items=[dict(r) for r in rows], total=total, limit=limit, offset=offset)


async def manifest(conn: asyncpg.Connection, tenant_id: uuid.UUID | None = None, *, every_scope: bool = False) -> list[dict[str, Any]]:
    """What the index of a scope must hold (or of every scope): the reconciliation's truth."""
    if every_scope:
        rows = await conn.fetch(f"SELECT {_SELECT} FROM knowledge_documents ORDER BY created_at, id")
    else:
        rows = await conn.fetch(
            f"SELECT {_SELECT} FROM knowledge_documents WHERE {SCOPE} = $1 ORDER BY created_at, id", _scope(tenant_id)
        )
    return [dict(r) for r in rows]


async def resolve_tenant(conn: asyncpg.Connection, ref: str) -> uuid.UUID:
    """A tenant by id or slug (the CLI's ``--tenant``)."""
    try:
        tenant_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        tenant_id = None
    row = await conn.fetchrow("SELECT id FROM tenants WHERE id = $1 OR slug = $2", tenant_id, ref)
    if row is None:
        raise NotFound(f"no tenant with id or slug {ref!r}")
    found: uuid.UUID = row["id"]
    return found


# -- AI gateway ---------------------------------------------------------------------------


async def cache_lookup(conn: asyncpg.Connection, tenant_id: uuid.UUID, key: str) -> dict[str, Any] | None:
    """A live cached answer (and count the hit), or ``None``."""
    row = await conn.fetchrow(
        "UPDATE ai_response_cache SET hits = hits + 1, last_hit_at = now()"
        " WHERE tenant_id = $1 AND key = $2 AND expires_at > now()"
        " RETURNING model, answer, citations, created_at, hits",
        tenant_id, key,
    )
    return dict(row) if row is not None else None


async def take_request(conn: asyncpg.Connection, tenant_id: uuid.UUID, limit: int) -> tuple[bool, int, float]:
    """Count one model request in the tenant's current clock hour.

    ``(allowed, requests counted this hour, seconds until the next hour)``.
    A refused request is not counted: the window stops at ``limit``.
    """
    row = await conn.fetchrow(
        """
        WITH w AS (SELECT date_trunc('hour', now()) AS start),
        bump AS (
            INSERT INTO ai_rate_windows (tenant_id, window_start, requests)
            SELECT $1, start, 1 FROM w
            ON CONFLICT (tenant_id, window_start) DO UPDATE SET requests = ai_rate_windows.requests + 1
                WHERE ai_rate_windows.requests < $2
            RETURNING requests
        )
        SELECT (SELECT requests FROM bump) AS counted,
               extract(epoch FROM (SELECT start FROM w) + interval '1 hour' - now())::float8 AS remaining
        """,
        tenant_id, limit,
    )
    await conn.execute(
        "DELETE FROM ai_rate_windows WHERE tenant_id = $1 AND window_start < now() - interval '1 day'", tenant_id
    )
    counted = row["counted"]
    return counted is not None, int(counted or limit), float(row["remaining"])


async def record_usage(
    conn: asyncpg.Connection, usage: Mapping[str, Any], answer: Mapping[str, Any] | None = None, ttl_s: int = 0
) -> None:
    """One ledger row, and the answer into the cache (with ``ttl_s``), in one transaction."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO ai_usage (tenant_id, session_id, request_id, model, outcome, input_tokens, output_tokens,"
            " cache_read_tokens, cache_write_tokens, cost_usd, latency_ms, error)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            usage["tenant_id"], usage.get("session_id"), usage.get("request_id"), usage["model"], usage["outcome"],
            usage.get("input_tokens", 0), usage.get("output_tokens", 0), usage.get("cache_read_tokens", 0),
            usage.get("cache_write_tokens", 0), usage.get("cost_usd", 0), usage.get("latency_ms"), usage.get("error"),
        )
        if answer is not None and ttl_s > 0:
            await conn.execute(
                "INSERT INTO ai_response_cache (tenant_id, key, model, question, answer, citations, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))"
                " ON CONFLICT (tenant_id, key) DO UPDATE SET model = EXCLUDED.model, question = EXCLUDED.question,"
                " answer = EXCLUDED.answer, citations = EXCLUDED.citations, created_at = now(),"
                " expires_at = EXCLUDED.expires_at, hits = 0, last_hit_at = NULL",
                usage["tenant_id"], answer["key"], usage["model"], answer["question"], answer["text"],
                list(answer["citations"]), float(ttl_s),
            )
            # Expired answers of this tenant go when it writes a new one: no sweeper task needed.
            await conn.execute(
                "DELETE FROM ai_response_cache WHERE tenant_id = $1 AND expires_at <= now()", usage["tenant_id"]
            )


async def usage_report(conn: asyncpg.Connection, tenant_id: uuid.UUID, start: date, end: date) -> list[dict[str, Any]]:
    """Ledger totals per UTC day, model and outcome, for ``start <= day <= end``."""
    lower = datetime.combine(start, datetime.min.time(), tzinfo=timezone.utc)
    upper = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    rows = await conn.fetch(
        """
        SELECT (at AT TIME ZONE 'UTC')::date AS day, model, outcome, count(*) AS requests,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
               sum(cost_usd) AS cost_usd
        FROM ai_usage WHERE tenant_id = $1 AND at >= $2 AND at < $3
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        tenant_id, lower, upper,
    )
    return [dict(r) for r in rows]
