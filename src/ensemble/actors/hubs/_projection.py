"""Query-table rows written with the HubConnection's events (same transaction).

See migration 0005 for why every statement here is idempotent, never fails
on a vanished reference, and why there is exactly one statement text per row
kind (the group committer orders rows within a statement, not across them).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

__all__ = ["project_hub_event"]

Rows = list[tuple[str, tuple[Any, ...]]]

_UPSERT_JOB = """
INSERT INTO print_jobs (
    id, tenant_id, printer_id, hub_id, file_id, file_name, file_size, status, progress,
    bytes_sent, bytes_total, current_layer, total_layers, remaining_s, failure_reason,
    command_id, submitted_by, submitted_at, started_at, finished_at, updated_at, version)
SELECT $1::uuid, t.id,
       (SELECT p.id FROM printers p WHERE p.id = $3::uuid AND p.tenant_id = t.id),
       (SELECT h.id FROM hubs h WHERE h.id = $4::uuid),
       (SELECT f.id FROM files f WHERE f.id = $5::uuid AND f.tenant_id = t.id),
       $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22
  FROM tenants t WHERE t.id = $2::uuid
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status, progress = EXCLUDED.progress, bytes_sent = EXCLUDED.bytes_sent,
    bytes_total = EXCLUDED.bytes_total, current_layer = EXCLUDED.current_layer,
    total_layers = EXCLUDED.total_layers, remaining_s = EXCLUDED.remaining_s,
    failure_reason = EXCLUDED.failure_reason, started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
WHERE print_jobs.version < EXCLUDED.version
"""

_JOB_TRANSITION = """
INSERT INTO print_job_transitions (job_id, version, tenant_id, status, progress, reason, at)
VALUES ($1::uuid, $2, $3::uuid, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
"""

_SAMPLE = """
INSERT INTO printer_samples (
    printer_id, ts, tenant_id, hub_id, status, job_id, progress, remaining_s, layer, total_layers,
    nozzle_temp, nozzle_target, bed_temp, bed_target)
VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT DO NOTHING
"""

_PRINTER_STATUS = """
UPDATE printers SET status = $3, status_detail = $4::jsonb, status_at = $5
 WHERE id = $1::uuid AND tenant_id = $2::uuid
"""

_HUB_SEEN = """
UPDATE hubs SET is_online = $2, last_seen_at = $3,
       firmware_version = coalesce($4, firmware_version),
       hardware_revision = coalesce($5, hardware_revision),
       local_ip_address = coalesce($6, local_ip_address),
       wifi_signal_strength = coalesce($7, wifi_signal_strength)
 WHERE id = $1::uuid
"""


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


def _ts_ms(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, timezone.utc)


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _job_rows(event: dict[str, Any], offset: int) -> Rows:
    job = event["job"]
    job_id, tenant_id = _uuid(job["job_id"]), _uuid(job["tenant_id"])
    if job_id is None or tenant_id is None:
        return []
    rows: Rows = [
        (
            _UPSERT_JOB,
            (
                job_id, tenant_id, _uuid(job["printer_id"]), _uuid(job["hub_id"]), _uuid(job.get("file_id")),
                job["file_name"], job["file_size"], job["status"], int(job.get("progress") or 0),
                job.get("bytes_sent"), job.get("bytes_total"), job.get("current_layer"), job.get("total_layers"),
                job.get("remaining_s"), job.get("failure_reason"), job["command_id"], _uuid(job.get("submitted_by")),
                _ts_ms(job["submitted_at"]), _ts_ms(job.get("started_at")), _ts_ms(job.get("finished_at")),
                _ts_ms(job["updated_at"]), offset,
            ),
        )
    ]
    if event.get("prev") != job["status"]:
        rows.append(
            (
                _JOB_TRANSITION,
                (job_id, offset, tenant_id, job["status"], job.get("progress"), event.get("reason"),
                 _ts_ms(job["updated_at"])),
            )
        )
    return rows


def _printer_row(tenant_id: str, printer: dict[str, Any], at: float) -> tuple[str, tuple[Any, ...]]:
    detail = {k: v for k, v in printer.items() if k not in ("printer_id", "name") and v is not None}
    when = _ts_ms(printer.get("ts")) or _ts(at)
    return (
        _PRINTER_STATUS,
        # The pool's jsonb codec encodes the dict (a str would be stored as a JSON string).
        (_uuid(printer["printer_id"]), _uuid(tenant_id), printer.get("status") or "offline", detail, when),
    )


def _hub_row(hub_id: uuid.UUID, online: bool, at: float, event: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    return (
        _HUB_SEEN,
        (hub_id, online, _ts(at), event.get("firmware"), event.get("hardware_revision"), event.get("local_ip"),
         event.get("rssi")),
    )


def project_hub_event(hub_key: str, event: dict[str, Any], offset: int) -> Rows:
    hub_id = _uuid(hub_key)
    if hub_id is None:
        return []
    kind = event["type"]
    if kind == "job_changed":
        return _job_rows(event, offset)
    if kind == "printer_reported":
        report = event["printer"]
        tenant_id = event["tenant_id"]
        rows: Rows = [_printer_row(tenant_id, report, event["at"])]
        if report.get("ts") is not None and _uuid(report["printer_id"]) is not None:
            rows.append(
                (
                    _SAMPLE,
                    (
                        _uuid(report["printer_id"]), _ts_ms(report["ts"]), _uuid(tenant_id), hub_id,
                        report.get("status") or "offline", report.get("job_id"), report.get("progress"),
                        report.get("remaining_s"), report.get("layer"), report.get("total_layers"),
                        report.get("nozzle_temp"), report.get("nozzle_target"), report.get("bed_temp"),
                        report.get("bed_target"),
                    ),
                )
            )
        rows.append(_hub_row(hub_id, True, event["at"], {}))
        return rows
    if kind in ("printers_offline",):
        return [_printer_row(event["tenant_id"], p, event["at"]) for p in event["printers"]]
    if kind == "hub_connected":
        return [_hub_row(hub_id, True, event["at"], event)]
    if kind == "hub_seen":
        return [_hub_row(hub_id, True, event["at"], event)]
    if kind in ("hub_disconnected", "hub_silent"):
        return [_hub_row(hub_id, False, event["at"], {})]
    return []
