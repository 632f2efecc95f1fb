"""The state of one diagnostic session and the reducer that folds events into it.

Theory of operation
-------------------
Everything a session remembers is built by :func:`apply` from its event log,
so a session reactivated after a crash is exactly the session that was live.
That includes *presence*: a device connecting or disconnecting is a durable
``presence`` event.  Connections do not survive the process, so the gateway
hands the actor the devices it really holds whenever one connects, and the
actor drops the ones that are gone (see ``_decide.connect``).

Events carry their own ``offset`` (the runtime's offset, known to ``decide``
as ``meta.next_offset``): the de-duplication map answers a retried send with
the original offset, and the recent messages in ``session_state`` carry the
offsets clients de-duplicate against.

The state is immutable by convention: every change builds new containers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "AiRequest",
    "Participant",
    "SessionInfo",
    "SessionState",
    "AI_PARTICIPANT",
    "apply",
    "encode_state",
    "decode_state",
    "sent_key",
]

AI_PARTICIPANT = "ai"
MESSAGE_EVENTS = frozenset({"new_message", "reading", "attachment_added"})


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    tenant_id: str
    client_id: str
    job_id: str | None
    equipment_id: str | None
    equipment: dict[str, Any] | None  # name, manufacturer, model, type, serial
    mode: str  # guided | expert | quick
    title: str | None
    created_at: str
    created_by: str
    created_by_name: str


@dataclass(frozen=True, slots=True)
class Participant:
    id: str  # the user's id, or "ai"
    name: str
    role: str  # primary | invited | ai
    member_role: str | None  # the tenant role when they joined
    joined_at: str
    left_at: str | None = None
    invited_by: str | None = None
    # device id -> subscriber id of its connection (this process's numbering)
    devices: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.left_at is None

    @property
    def online(self) -> bool:
        return bool(self.devices)


@dataclass(frozen=True, slots=True)
class AiRequest:
    request_id: str
    asked_by: str
    question_offset: int
    started_at: str
    deadline: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class SessionState:
    key: str
    info: SessionInfo | None = None
    status: str = "new"  # new | active | completed
    summary: str | None = None
    completed_at: str | None = None
    completed_by: str | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    recent: tuple[dict[str, Any], ...] = ()
    message_count: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # sent_key -> offset
    ai: AiRequest | None = None
    last_offset: int = 0
    recent_size: int = 50

    @property
    def created(self) -> bool:
        return self.info is not None

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def sent_key(sender_id: str, client_id: str) -> str:
    return f"{sender_id}:{client_id}"


def _with_participant(state: SessionState, participant: Participant) -> dict[str, Participant]:
    return {**state.participants, participant.id: participant}


def apply(state: SessionState, event: dict[str, Any]) -> SessionState:
    kind = event["type"]
    offset = int(event.get("offset", state.last_offset + 1))
    state = replace(state, last_offset=offset)
    if kind == "session_created":
        s = event["session"]
        info = SessionInfo(
            id=s["id"], tenant_id=s["tenant_id"], client_id=s["client_id"], job_id=s.get("job_id"),
            equipment_id=s.get("equipment_id"), equipment=s.get("equipment"), mode=s["mode"], title=s.get("title"),
            created_at=event["at"], created_by=s["created_by"], created_by_name=s["created_by_name"],
        )
        return replace(state, info=info, status="active")
    if kind == "participant_joined":
        p = event["participant"]
        joined = Participant(
            id=p["id"], name=p["name"], role=p["role"], member_role=p.get("member_role"),
            joined_at=event["at"], invited_by=p.get("invited_by"),
        )
        return replace(state, participants=_with_participant(state, joined))
    if kind == "participant_left":
        current = state.participants.get(event["participant_id"])
        if current is None:
            return state
        left = replace(current, left_at=event["at"], devices={})
        return replace(state, participants=_with_participant(state, left))
    if kind == "presence":
        current = state.participants.get(event["participant_id"])
        if current is None:
            return state
        devices = dict(current.devices)
        if event["connected"]:
            devices[event["device"]] = int(event["subscriber_id"])
        else:
            devices.pop(event["device"], None)
        return replace(state, participants=_with_participant(state, replace(current, devices=devices)))
    if kind in MESSAGE_EVENTS:
        message = event["message"]
        recent = (*state.recent, message)[-state.recent_size:]
        sent = state.sent
        if message.get("client_id") is not None:
            sent = {**sent, sent_key(message["sender_id"], message["client_id"]): offset}
        ai = state.ai
        if ai is not None and message.get("reply_to") == ai.request_id:
            ai = None
        return replace(state, recent=recent, message_count=state.message_count + 1, sent=sent, ai=ai)
    if kind == "ai_requested":
        ai_request = AiRequest(
            request_id=event["request_id"], asked_by=event["asked_by"], question_offset=event["question_offset"],
            started_at=event["at"], deadline=float(event["deadline"]),
        )
        return replace(state, ai=ai_request)
    if kind == "session_completed":
        # Every connection is closed with the session: nobody stays online.
        offline = {pid: replace(p, devices={}) for pid, p in state.participants.items()}
        return replace(
            state, status="completed", summary=event["summary"], completed_at=event["at"],
            completed_by=event["completed_by"], participants=offline, ai=None,
        )
    return state


# -- snapshots ----------------------------------------------------------------


def encode_state(state: SessionState) -> dict[str, Any]:
    info = state.info
    return {
        "key": state.key,
        "info": None if info is None else {
            "id": info.id, "tenant_id": info.tenant_id, "client_id": info.client_id, "job_id": info.job_id,
            "equipment_id": info.equipment_id, "equipment": info.equipment, "mode": info.mode, "title": info.title,
            "created_at": info.created_at, "created_by": info.created_by, "created_by_name": info.created_by_name,
        },
        "status": state.status,
        "summary": state.summary,
        "completed_at": state.completed_at,
        "completed_by": state.completed_by,
        "participants": [
            {
                "id": p.id, "name": p.name, "role": p.role, "member_role": p.member_role, "joined_at": p.joined_at,
                "left_at": p.left_at, "invited_by": p.invited_by, "devices": dict(p.devices),
            }
            for p in state.participants.values()
        ],
        "recent": list(state.recent),
        "message_count": state.message_count,
        "sent": dict(state.sent),
        "ai": None if state.ai is None else {
            "request_id": state.ai.request_id, "asked_by": state.ai.asked_by,
            "question_offset": state.ai.question_offset, "started_at": state.ai.started_at,
            "deadline": state.ai.deadline,
        },
        "last_offset": state.last_offset,
        "recent_size": state.recent_size,
    }


def decode_state(data: dict[str, Any]) -> SessionState:
    info = data["info"]
    participants = {
        p["id"]: Participant(
            id=p["id"], name=p["name"], role=p["role"], member_role=p["member_role"], joined_at=p["joined_at"],
            left_at=p["left_at"], invited_by=p["invited_by"], devices={str(k): int(v) for k, v in p["devices"].items()},
        )
        for p in data["participants"]
    }
    return SessionState(
        key=data["key"],
        info=None if info is None else SessionInfo(**info),
        status=data["status"],
        summary=data["summary"],
        completed_at=data["completed_at"],
        completed_by=data["completed_by"],
        participants=participants,
        recent=tuple(data["recent"]),
        message_count=data["message_count"],
        sent={str(k): int(v) for k, v in data["sent"].items()},
        ai=None if data["ai"] is None else AiRequest(**data["ai"]),
        last_offset=data["last_offset"],
        recent_size=data["recent_size"],
    )
