"""What clients see of a session: the state frame and one frame per event.

The same shapes go over the socket (JSON or msgpack) and out of REST, so a
client renders a message the same way whichever way it arrived.
"""

from __future__ import annotations

from typing import Any

from ensemble.actors.sessions._state import Participant, SessionState

__all__ = ["participant_view", "session_view", "state_frame", "event_frame", "ai_view"]


def participant_view(p: Participant) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "role": p.role,
        "member_role": p.member_role,
        "joined_at": p.joined_at,
        "left_at": p.left_at,
        "invited_by": p.invited_by,
        "online": p.online,
        "devices": len(p.devices),
    }


def session_view(state: SessionState) -> dict[str, Any]:
    info = state.info
    if info is None:
        return {"id": state.key, "status": state.status}
    return {
        "id": info.id,
        "tenant_id": info.tenant_id,
        "client_id": info.client_id,
        "job_id": info.job_id,
        "equipment_id": info.equipment_id,
        "equipment": info.equipment,
        "mode": info.mode,
        "title": info.title,
        "status": state.status,
        "summary": state.summary,
        "created_at": info.created_at,
        "created_by": info.created_by,
        "created_by_name": info.created_by_name,
        "completed_at": state.completed_at,
        "completed_by": state.completed_by,
        "message_count": state.message_count,
    }


def ai_view(state: SessionState) -> dict[str, Any] | None:
    if state.ai is None:
        return None
    return {
        "request_id": state.ai.request_id,
        "asked_by": state.ai.asked_by,
        "question_offset": state.ai.question_offset,
        "started_at": state.ai.started_at,
    }


def state_frame(state: SessionState) -> dict[str, Any]:
    return {
        "type": "session_state",
        "session": session_view(state),
        "participants": [participant_view(p) for p in state.participants.values()],
        "messages": list(state.recent),
        "ai": ai_view(state),
    }


def event_frame(event: dict[str, Any]) -> dict[str, Any] | None:
    kind = event["type"]
    if kind in ("new_message", "reading", "attachment_added"):
        return {"type": kind, "message": event["message"]}
    if kind == "presence":
        # Device ids and connection numbers stay inside the server.
        return {
            "type": "presence",
            "participant_id": event["participant_id"],
            "online": event["online"],
            "devices": event["devices"],
            "at": event["at"],
        }
    if kind == "participant_joined":
        p = event["participant"]
        return {
            "type": "participant_joined",
            "participant": {
                "id": p["id"], "name": p["name"], "role": p["role"], "member_role": p.get("member_role"),
                "joined_at": event["at"], "left_at": None, "invited_by": p.get("invited_by"),
                "online": False, "devices": 0,
            },
        }
    if kind == "participant_left":
        return {"type": "participant_left", "participant_id": event["participant_id"], "by": event["by"], "at": event["at"]}
    if kind == "ai_requested":
        return {
            "type": "ai_requested",
            "request_id": event["request_id"],
            "asked_by": event["asked_by"],
            "question_offset": event["question_offset"],
            "at": event["at"],
        }
    if kind == "session_completed":
        return {
            "type": "session_completed",
            "summary": event["summary"],
            "completed_by": event["completed_by"],
            "completed_by_name": event["completed_by_name"],
            "at": event["at"],
        }
    if kind == "session_created":
        return {"type": "session_created", "session": event["session"], "at": event["at"]}
    return None
