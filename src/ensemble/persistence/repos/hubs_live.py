"""What the hub and dashboard actors need from Postgres, read in one crossing each.

Actors are pure; the socket handlers and REST routes read these facts and
hand them to the actors as part of a command (``hub_connect``,
``sync_catalog``, ``start_job``).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

__all__ = ["hub_facts", "tenant_catalog", "job_row_to_state", "ACTIVE_JOB_STATUSES"]

ACTIVE_JOB_STATUSES = ("queued", "uploading", "printing", "paused")
_RECENT_FINISHED_S = 3600  # finished jobs a dashboard sync still reconciles


async def hub_facts(conn: asyncpg.Connection, hub_id: uuid.UUID) -> dict[str, Any]:
    """``{tenant_id, name, printers: [{printer_id, name}]}`` of a hub (tenant None if unclaimed)."""
    row = await conn.fetchrow("SELECT tenant_id, name FROM hubs WHERE id = $1", hub_id)
    if row is None or row["tenant_id"] is None:
        return {"tenant_id": None, "name": None, "printers": []}
    printers = await conn.fetch(
        "SELECT id, name FROM printers WHERE hub_id = $1 AND tenant_id = $2 ORDER BY sort_order, name",
        hub_id,
        row["tenant_id"],
    )
    return {
        "tenant_id": str(row["tenant_id"]),
        "name": row["name"],
        "printers": [{"printer_id": str(p["id"]), "name": p["name"]} for p in printers],
    }


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


async def tenant_catalog(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Every printer and hub of the tenant, its active and recently finished jobs.

    Printers: ``{printer_id, name, hub_id, status, detail}``; hubs: ``{hub_id,
    name, is_online, firmware_version, last_seen_at (ms), printer_count}``;
    jobs: :func:`job_row_to_state` plus ``version``.
    """
    printers = await conn.fetch(
        "SELECT id, name, hub_id, status, status_detail FROM printers WHERE tenant_id = $1 ORDER BY sort_order, name",
        tenant_id,
    )
    hub_rows = await conn.fetch(
        "SELECT h.id, h.name, h.is_online, h.firmware_version, h.last_seen_at,"
        "       (SELECT count(*) FROM printers p WHERE p.hub_id = h.id AND p.tenant_id = h.tenant_id) AS printer_count"
        "  FROM hubs h WHERE h.tenant_id = $1 ORDER BY h.name",
        tenant_id,
    )
    job_rows = await conn.fetch(
        "SELECT * FROM print_jobs WHERE tenant_id = $1"
        "   AND (status = ANY($2::text[]) OR updated_at > now() - make_interval(secs => $3))"
        " ORDER BY submitted_at LIMIT 2000",
        tenant_id,
        list(ACTIVE_JOB_STATUSES),
        float(_RECENT_FINISHED_S),
    )
    return {
        "printers": [
            {
                "printer_id": str(p["id"]),
                "name": p["name"],
                "hub_id": str(p["hub_id"]) if p["hub_id"] else None,
                "status": p["status"],
                "detail": dict(p["status_detail"] or {}),
            }
            for p in printers
        ],
        "hubs": [
            {
                "hub_id": str(h["id"]),
                "name": h["name"],
                "is_online": bool(h["is_online"]),
                "firmware_version": h["firmware_version"],
                "last_seen_at": _ms(h["last_seen_at"]),
                "printer_count": int(h["printer_count"]),
            }
            for h in hub_rows
        ],
        "jobs": [{**job_row_to_state(j), "version": int(j["version"])} for j in job_rows],
    }


def job_row_to_state(row: Any) -> dict[str, Any]:
    """A ``print_jobs`` row in the actor's job shape (ids as strings, times in ms)."""

    def s(v: Any) -> str | None:
        return None if v is None else str(v)

    return {
        "job_id": str(row["id"]),
        "tenant_id": str(row["tenant_id"]),
        "printer_id": s(row["printer_id"]),
        "hub_id": s(row["hub_id"]),
        "file_id": s(row["file_id"]),
        "file_name": row["file_name"],
        "file_size": row["file_size"],
        "status": row["status"],
        "progress": row["progress"],
        "bytes_sent": row["bytes_sent"],
        "bytes_total": row["bytes_total"],
        "current_layer": row["current_layer"],
        "total_layers": row["total_layers"],
        "remaining_s": row["remaining_s"],
        "failure_reason": row["failure_reason"],
        "command_id": row["command_id"],
        "submitted_by": s(row["submitted_by"]),
        "submitted_at": _ms(row["submitted_at"]),
        "started_at": _ms(row["started_at"]),
        "finished_at": _ms(row["finished_at"]),
        "updated_at": _ms(row["updated_at"]),
    }
