"""The service-job state machine, as a pure transition table.

::

    unassigned ──assign──► assigned ──accept──► accepted ──start──► in_progress ──complete──► completed
         ▲                  │  ▲ ▲                 │
         │                  │  │ └──assign─────────┘  (dispatcher reassigns before work starts)
         │               decline└──assign──┐
         │                  ▼              │
         │               declined ─────────┘
         └─ any state but completed/cancelled ──cancel──► cancelled

``assign`` is a dispatcher's action; ``accept``/``decline``/``start``/
``complete`` are the assigned technician's (a dispatcher may act for them).
Anything not in the table is a conflict with the job's current state (409).
No I/O here: the jobs repository applies the result under a row lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from ensemble.errors import Conflict

__all__ = ["JobStatus", "JobAction", "TRANSITIONS", "ASSIGNEE_ACTIONS", "next_status", "allowed_actions"]


class JobStatus(StrEnum):
    UNASSIGNED = "unassigned"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class JobAction(StrEnum):
    ASSIGN = "assign"
    ACCEPT = "accept"
    DECLINE = "decline"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"


S, A = JobStatus, JobAction
TERMINAL = frozenset({S.COMPLETED, S.CANCELLED})

TRANSITIONS: Mapping[tuple[JobStatus, JobAction], JobStatus] = {
    (S.UNASSIGNED, A.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, A.ASSIGN): S.ASSIGNED,
    (S.ACCEPTED, A.ASSIGN): S.ASSIGNED,
    (S.DECLINED, A.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, A.ACCEPT): S.ACCEPTED,
    (S.ASSIGNED, A.DECLINE): S.DECLINED,
    (S.ACCEPTED, A.START): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.COMPLETE): S.COMPLETED,
    **{(state, A.CANCEL): S.CANCELLED for state in S if state not in TERMINAL},
}

# Actions that belong to the technician the job is assigned to.
ASSIGNEE_ACTIONS = frozenset({A.ACCEPT, A.DECLINE, A.START, A.COMPLETE})


def allowed_actions(status: str) -> list[str]:
    return sorted(action.value for (state, action) in TRANSITIONS if state == status)


def next_status(status: str, action: str) -> JobStatus:
    """The status after ``action``, or ``Conflict`` naming what is allowed now."""
    try:
        return TRANSITIONS[(JobStatus(status), JobAction(action))]
    except (KeyError, ValueError):
        raise Conflict(
            f"cannot {action} a job that is {status}",
            details={"status": status, "action": action, "allowed": allowed_actions(status)},
        ) from None
