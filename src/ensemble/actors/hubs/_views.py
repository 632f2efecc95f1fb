"""What the HubConnection tells the rest of the system, as plain dicts.

The hub protocol reports a printer in its own terms (``remaining_s``,
``layer``); dashboards speak the product document's terms
(``remaining_minutes``, ``current_layer``).  These pure functions are the one
place that translates, so the TenantDashboard, the REST API and the tests
agree on every shape.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "PRINTER_FIELDS",
    "blank_printer",
    "normalize_report",
    "dashboard_printer",
    "dashboard_job",
    "dashboard_hub",
    "ms",
]

# Normalized printer state kept per printer (the hub protocol's printer_status
# fields, minus seq/type).
PRINTER_FIELDS = (
    "status",
    "job_id",
    "progress",
    "remaining_s",
    "layer",
    "total_layers",
    "nozzle_temp",
    "nozzle_target",
    "bed_temp",
    "bed_target",
    "error_code",
    "ts",
)


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def blank_printer(printer_id: str, name: str | None) -> dict[str, Any]:
    printer: dict[str, Any] = {"printer_id": printer_id, "name": name}
    for field in PRINTER_FIELDS:
        printer[field] = None
    printer["status"] = "offline"
    return printer


def normalize_report(message: dict[str, Any]) -> dict[str, Any]:
    """The normalized fields of a decoded ``printer_status`` wire message."""
    return {field: message.get(field) for field in PRINTER_FIELDS}


def dashboard_printer(hub_id: str, printer: dict[str, Any]) -> dict[str, Any]:
    """A ``printer_status`` body for dashboards (no ``type``; None fields dropped)."""
    remaining = printer.get("remaining_s")
    out = {
        "printer_id": printer["printer_id"],
        "status": printer.get("status") or "offline",
        "hub_id": hub_id,
        "job_id": printer.get("job_id"),
        "progress": printer.get("progress"),
        "remaining_minutes": None if remaining is None else int(math.ceil(remaining / 60)),
        "current_layer": printer.get("layer"),
        "total_layers": printer.get("total_layers"),
        "nozzle_temp": printer.get("nozzle_temp"),
        "bed_temp": printer.get("bed_temp"),
        "error_code": printer.get("error_code"),
        "ts": printer.get("ts"),
    }
    return {k: v for k, v in out.items() if v is not None}


def dashboard_job(job: dict[str, Any]) -> dict[str, Any]:
    """A ``job_update`` body for dashboards."""
    actual = None
    if job.get("started_at") is not None and job.get("finished_at") is not None:
        actual = max(0, int(round((job["finished_at"] - job["started_at"]) / 60000)))
    out = {
        "job_id": job["job_id"],
        "status": job["status"],
        "printer_id": job.get("printer_id"),
        "progress": job.get("progress"),
        "actual_time_minutes": actual,
        "failure_reason": job.get("failure_reason"),
        "ts": job.get("updated_at"),
    }
    return {k: v for k, v in out.items() if v is not None}


def dashboard_hub(state: dict[str, Any]) -> dict[str, Any]:
    """A ``hub_status`` body for dashboards."""
    out = {
        "hub_id": state["hub_id"],
        "is_online": bool(state["online"]),
        "printer_count": len(state["printers"]),
        "name": state.get("name"),
        "firmware_version": state.get("firmware"),
        "last_seen_at": None if state.get("last_seen") is None else ms(state["last_seen"]),
    }
    return {k: v for k, v in out.items() if v is not None}
