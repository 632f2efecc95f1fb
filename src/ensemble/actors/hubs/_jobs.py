"""The print job state machine: one pure transition table.

Theory of operation
-------------------
A job is created ``queued`` when a user submits it; from then on it moves
only through :data:`TRANSITIONS`::

    queued ──► uploading ──► printing ◄──► paused
       │           │            │             │
       └───────────┴────────────┴─────────────┴──► completed | failed | cancelled

Two kinds of input drive it:

* **User actions** (REST ``pause``/``resume``/``cancel``) are checked with
  :func:`check_action`; an action the current status does not allow is a
  ``Conflict`` (HTTP 409).  The same table answers for jobs the actor no
  longer holds (terminal ones, read from ``print_jobs``), so the API gives
  one answer whichever side looks.
* **Device reports** (``file_progress``, ``printer_status``, ``command_ack``)
  are facts about the past, possibly replayed from a hub's store-and-forward
  outbox: :func:`advance` applies them when the table allows the move and
  ignores them otherwise (a late "printing" after "completed" changes nothing).

Jobs are plain dicts (JSON/msgpack-able, part of the actor's snapshot).
Times are Unix milliseconds.
"""

from __future__ import annotations

from typing import Any

from ensemble.errors import Conflict

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "STATUSES",
    "TRANSITIONS",
    "ACTIONS",
    "check_action",
    "can_move",
    "advance",
    "new_job",
    "on_status_report",
    "on_file_progress",
    "on_print_ack",
]

Job = dict[str, Any]

STATUSES = ("queued", "uploading", "printing", "paused", "completed", "failed", "cancelled")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
ACTIVE = frozenset(STATUSES) - TERMINAL

TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"uploading", "printing", "completed", "failed", "cancelled"}),
    "uploading": frozenset({"printing", "completed", "failed", "cancelled"}),
    "printing": frozenset({"paused", "completed", "failed", "cancelled"}),
    "paused": frozenset({"printing", "completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}

# User action -> the statuses it may be taken from.
ACTIONS: dict[str, frozenset[str]] = {
    "pause": frozenset({"printing"}),
    "resume": frozenset({"paused"}),
    "cancel": frozenset({"queued", "uploading", "printing", "paused"}),
}


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def check_action(status: str, action: str) -> None:
    """Raise ``Conflict`` unless ``action`` is allowed on a job in ``status``."""
    allowed = ACTIONS.get(action)
    if allowed is None:
        raise Conflict(f"unknown job action {action!r}")
    if status not in allowed:
        raise Conflict(
            f"cannot {action} a job that is {status}",
            details={"status": status, "action": action, "allowed_from": sorted(allowed)},
        )


def new_job(
    *,
    job_id: str,
    tenant_id: str,
    printer_id: str,
    hub_id: str,
    file_id: str | None,
    file_name: str,
    file_size: int,
    command_id: str,
    submitted_by: str | None,
    now_ms: int,
) -> Job:
    return {
        "job_id": job_id,
        "tenant_id": tenant_id,
        "printer_id": printer_id,
        "hub_id": hub_id,
        "file_id": file_id,
        "file_name": file_name,
        "file_size": file_size,
        "status": "queued",
        "progress": 0,
        "bytes_sent": None,
        "bytes_total": None,
        "current_layer": None,
        "total_layers": None,
        "remaining_s": None,
        "failure_reason": None,
        "command_id": command_id,
        "submitted_by": submitted_by,
        "submitted_at": now_ms,
        "started_at": None,
        "finished_at": None,
        "updated_at": now_ms,
    }


def advance(job: Job, status: str, now_ms: int, **fields: Any) -> Job | None:
    """The job moved to ``status`` (with ``fields`` updated), or None if the table forbids it.

    Staying in the same status with new fields (progress) is allowed for
    active jobs.
    """
    current = job["status"]
    if current in TERMINAL:
        return None
    if status != current and not can_move(current, status):
        return None
    changed = {**job, **fields, "status": status}
    if status == "printing" and changed.get("started_at") is None:
        changed["started_at"] = now_ms
    if status in TERMINAL:
        changed["finished_at"] = now_ms
        if status == "completed":
            changed["progress"] = 100
    if changed == job:
        return None
    changed["updated_at"] = now_ms
    return changed


def on_status_report(job: Job, report: dict[str, Any], now_ms: int) -> Job | None:
    """A normalized ``printer_status`` naming this job (``report["job_id"] == job_id``)."""
    status = report.get("status")
    progress = report.get("progress")
    fields: dict[str, Any] = {}
    for source, target in (("layer", "current_layer"), ("total_layers", "total_layers"), ("remaining_s", "remaining_s")):
        if report.get(source) is not None:
            fields[target] = report[source]
    if progress is not None:
        fields["progress"] = max(0, min(100, int(progress)))
    if status == "printing":
        return advance(job, "printing", now_ms, **fields)
    if status == "paused":
        return advance(job, "paused", now_ms, **fields)
    if status == "error":
        reason = f"printer error {report['error_code']}" if report.get("error_code") else "printer error"
        return advance(job, "failed", now_ms, failure_reason=reason, **fields)
    if status == "idle":
        if progress is not None and progress >= 100:
            return advance(job, "completed", now_ms, **fields)
        if job["status"] in ("printing", "paused"):
            # The device dropped the job without finishing (stopped on its panel).
            return advance(job, "failed", now_ms, failure_reason="stopped on the printer before finishing", **fields)
        return None
    if status == "offline" and job["status"] in ("queued", "uploading"):
        return None
    return None


def on_file_progress(job: Job, bytes_sent: int, bytes_total: int, now_ms: int) -> Job | None:
    if job["status"] not in ("queued", "uploading"):
        return None
    return advance(job, "uploading", now_ms, bytes_sent=bytes_sent, bytes_total=bytes_total)


def on_print_ack(job: Job, success: bool, error: str | None, now_ms: int) -> Job | None:
    """The hub's answer to the job's ``print_command``: the printer took the job, or not."""
    if success:
        return advance(job, "printing", now_ms)
    return advance(job, "failed", now_ms, failure_reason=f"hub refused the print: {error or 'no reason given'}")
