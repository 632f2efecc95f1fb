"""The session's rules: for a state and a command, which events happen.

Pure functions (see ``actors/_behavior.py``): no I/O, the time comes from
``meta.now``, the next offset from ``meta.next_offset``.  Every refusal is an
``EnsembleError`` whose class says how the edge answers.

Who may do what
---------------
- Every command from a person carries the gateway's verified principal.  A
  principal of another tenant is told the session does not exist.
- Sending (message, reading, attachment), typing, connecting a socket and
  leaving take an *active participant*.  Inviting and completing take an
  active participant or a dispatcher (owner, admin, operator) of the tenant.
- ``ai_delta``/``ai_answer``/``ai_failed``/``disconnect`` come from the
  server itself (principal ``None``); a person cannot send them.

Idempotent sends
----------------
A send may carry a ``client_id``.  The first send with a given
``(sender, client_id)`` is stored; any later one (a retry after a reconnect,
an offline queue flushed twice) is answered with the original offset and
stores nothing — even after the session is completed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from ensemble.actors._behavior import Close, Decision, Send, TurnMeta
from ensemble.actors.sessions import _rules as rules
from ensemble.actors.sessions._ai import AiRunner
from ensemble.actors.sessions._limits import (
    CLOSE_NOT_PARTICIPANT,
    CLOSE_SESSION_COMPLETED,
    AiBusy,
    SessionCompleted,
    SessionLimits,
)
from ensemble.actors.sessions._state import AI_PARTICIPANT, Participant, SessionState, sent_key
from ensemble.actors.sessions._views import participant_view, session_view, state_frame
from ensemble.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from ensemble.knowledge.assistant import AssistantRequest, EquipmentContext, HistoryMessage

__all__ = ["decide", "on_alarm", "message_id", "DISPATCHER_ROLES", "SYSTEM_COMMANDS", "CLIENT_COMMANDS"]

# Mirrors the gateway's permission table (actors must not import the gateway).
DISPATCHER_ROLES = frozenset({"owner", "admin", "operator"})
MESSAGE_ID_NAMESPACE = uuid.UUID("7d0f2b8e-5f7c-4c55-9a51-2f8a3c1d9e40")
AI_NAME = "AI Assistant"


class Context:
    """What the pure functions may know besides state and command: limits, and how to start AI work."""

    def __init__(self, limits: SessionLimits, ai: AiRunner) -> None:
        self.limits = limits
        self.ai = ai


class _Events:
    """Builds a turn's events, numbering them as the runtime will."""

    def __init__(self, meta: TurnMeta) -> None:
        self.next = meta.next_offset
        self.at = rules.iso(meta.now)
        self.items: list[dict[str, Any]] = []

    def add(self, type_: str, **fields: Any) -> int:
        offset = self.next
        self.items.append({"type": type_, "offset": offset, "at": self.at, **fields})
        self.next += 1
        return offset


def message_id(session_id: str, offset: int) -> str:
    """Deterministic, so that replay and retries agree on a message's id."""
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{session_id}:{offset}"))


# -- who is asking ---------------------------------------------------------------


def _require_created(state: SessionState) -> None:
    if state.info is None:
        raise NotFound("no such session")


def _caller(state: SessionState, meta: TurnMeta) -> tuple[str, str]:
    """``(user_id, tenant role)`` of a person in the session's tenant."""
    _require_created(state)
    assert state.info is not None
    principal = meta.principal
    if principal is None:
        raise Forbidden("this command needs an authenticated caller")
    if str(getattr(principal, "tenant_id", "")) != state.info.tenant_id:
        raise NotFound("no such session")  # another tenant's session does not exist for them
    return str(getattr(principal, "user_id", "")), str(getattr(principal, "role", ""))


def _participant(state: SessionState, user_id: str) -> Participant:
    p = state.participants.get(user_id)
    if p is None or not p.active or p.id == AI_PARTICIPANT:
        raise Forbidden("you are not a participant of this session")
    return p


def _participant_or_dispatcher(state: SessionState, user_id: str, role: str) -> Participant | None:
    p = state.participants.get(user_id)
    if p is not None and p.active:
        return p
    if role in DISPATCHER_ROLES:
        return None
    raise Forbidden("only participants and dispatchers (owner, admin, operator) may do this")


def _require_open(state: SessionState) -> None:
    if state.completed:
        raise SessionCompleted("the session is completed and read-only")


def _system(meta: TurnMeta) -> None:
    if meta.principal is not None:
        raise Forbidden("this command comes from the server only")


def _only(command: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(command) - set(allowed) - {"type"})
    if unknown:
        raise InvalidInput(
            f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            details=[{"field": name, "message": "unknown field"} for name in unknown],
        )


# -- sends -----------------------------------------------------------------------

_SEND_FIELDS = ("client_id", "sent_at")


def _duplicate(state: SessionState, user_id: str, client_id: str | None, meta: TurnMeta) -> Decision | None:
    if client_id is None:
        return None
    offset = state.sent.get(sent_key(user_id, client_id))
    if offset is None:
        return None
    assert state.info is not None
    mid = message_id(state.info.id, offset)
    message = next((m for m in state.recent if m["offset"] == offset), None)
    decision = Decision(reply={"offset": offset, "duplicate": True, "message_id": mid, "message": message})
    _ack(decision, meta, client_id, offset, mid, duplicate=True)
    return decision


def _ack(decision: Decision, meta: TurnMeta, client_id: str | None, offset: int, mid: str, *, duplicate: bool) -> None:
    # Through the connection's own queue, so the ack follows the event frame.
    if meta.subscriber_id is not None:
        decision.effects.append(
            Send(
                meta.subscriber_id,
                {"type": "ack", "client_id": client_id, "message_offset": offset, "message_id": mid, "duplicate": duplicate},
            )
        )


def _require_room(ctx: Context, state: SessionState) -> None:
    if state.message_count >= ctx.limits.max_messages:
        raise Conflict(f"the session has reached its limit of {ctx.limits.max_messages} messages; start a new one")


def _message(
    state: SessionState, offset: int, at: str, *, kind: str, role: str, sender: Participant, text: str,
    client_id: str | None, client_sent_at: str | None, **extra: Any,
) -> dict[str, Any]:
    assert state.info is not None
    return {
        "id": message_id(state.info.id, offset),
        "offset": offset,
        "session_id": state.info.id,
        "kind": kind,
        "role": role,
        "sender_id": sender.id,
        "sender_name": sender.name,
        "sender_role": sender.role,
        "text": text,
        "client_id": client_id,
        "client_sent_at": client_sent_at,
        "at": at,
        **extra,
    }


def _send(
    ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta, fields: tuple[str, ...],
    build: Callable[[Participant, int, str, str | None, str | None], tuple[str, dict[str, Any]]],
) -> tuple[Decision, _Events, dict[str, Any]] | Decision:
    """The part every send shares: caller, de-duplication, state checks, the event."""
    user_id, _ = _caller(state, meta)
    client_id = rules.client_id(command.get("client_id"))
    duplicate = _duplicate(state, user_id, client_id, meta)
    if duplicate is not None:
        return duplicate
    sender = _participant(state, user_id)
    _require_open(state)
    _only(command, (*_SEND_FIELDS, *fields))
    sent_at = rules.client_time(command.get("sent_at"))
    _require_room(ctx, state)
    events = _Events(meta)
    offset = events.next
    event_type, message = build(sender, offset, events.at, client_id, sent_at)
    events.add(event_type, message=message)
    decision = Decision(events=events.items, reply={"offset": offset, "duplicate": False, "message_id": message["id"], "message": message})
    _ack(decision, meta, client_id, offset, message["id"], duplicate=False)
    return decision, events, message


def post_message(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    def build(sender: Participant, offset: int, at: str, client_id: str | None, sent_at: str | None) -> tuple[str, dict[str, Any]]:
        text = rules.text("text", command.get("text"), ctx.limits.max_text_chars)
        ask_ai = rules.flag("ask_ai", command.get("ask_ai"))
        if ask_ai and state.ai is not None:
            raise AiBusy("the assistant is still answering the previous question; ask again when it is done")
        return "new_message", _message(
            state, offset, at, kind="text", role="user", sender=sender, text=text,
            client_id=client_id, client_sent_at=sent_at, ask_ai=ask_ai,
        )

    result = _send(ctx, state, command, meta, ("text", "ask_ai"), build)
    if isinstance(result, Decision):
        return result
    decision, events, message = result
    if message["ask_ai"]:
        _ask_ai(ctx, state, meta, decision, events, message)
    return decision


def post_reading(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    def build(sender: Participant, offset: int, at: str, client_id: str | None, sent_at: str | None) -> tuple[str, dict[str, Any]]:
        reading = rules.reading(command, ctx.limits.max_note_chars)
        value = reading["value"]
        text = f"{reading['kind']}: {value:g} {reading['unit']}".strip() if isinstance(value, float) else (
            f"{reading['kind']}: {value} {reading['unit']}".strip()
        )
        return "reading", _message(
            state, offset, at, kind="reading", role="user", sender=sender, text=text,
            client_id=client_id, client_sent_at=sent_at, reading=reading,
        )

    result = _send(ctx, state, command, meta, ("kind", "value", "unit", "equipment_id", "note"), build)
    return result if isinstance(result, Decision) else result[0]


def post_attachment(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    """An uploaded file shown in the session; the gateway looked the file up and signed its URL."""

    def build(sender: Participant, offset: int, at: str, client_id: str | None, sent_at: str | None) -> tuple[str, dict[str, Any]]:
        file = command.get("file")
        if not isinstance(file, dict):
            raise rules.field_error("file", "required")
        file_id = rules.uuid_text("file_id", file.get("id"))
        size = file.get("size_bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise rules.field_error("file.size_bytes", "must be a non-negative integer")
        limit = ctx.limits.max_attachment_bytes
        if size > limit:
            raise PayloadTooLarge(
                f"attachments may be at most {limit} bytes (this file has {size})",
                details=[{"field": "file_id", "message": f"at most {limit} bytes", "limit": limit}],
            )
        name = rules.text("file.name", file.get("name"), 255)
        content_type = rules.text("file.content_type", file.get("content_type"), 255)
        caption = rules.optional_text("caption", command.get("caption"), ctx.limits.max_caption_chars)
        url = command.get("url")
        expires = command.get("url_expires_at")
        if not isinstance(url, str) or not (expires is None or isinstance(expires, str)):
            raise rules.field_error("url", "required (signed by the gateway)")
        attachment = {
            "file_id": file_id, "name": name, "content_type": content_type, "size_bytes": size,
            "caption": caption, "url": url, "url_expires_at": expires,
        }
        return "attachment_added", _message(
            state, offset, at, kind="attachment", role="user", sender=sender, text=caption or name,
            client_id=client_id, client_sent_at=sent_at, attachment=attachment,
        )

    result = _send(ctx, state, command, meta, ("file", "caption", "url", "url_expires_at"), build)
    return result if isinstance(result, Decision) else result[0]


# -- the AI participant ------------------------------------------------------------------


def _history(ctx: Context, state: SessionState) -> tuple[HistoryMessage, ...]:
    recent = state.recent[-ctx.limits.ai_history_messages:]
    return tuple(
        HistoryMessage(
            role="assistant" if m["role"] == "assistant" else "user", sender_name=m["sender_name"], text=m["text"], at=m["at"]
        )
        for m in recent
        if m["kind"] != "ai_error"
    )


def _ask_ai(
    ctx: Context, state: SessionState, meta: TurnMeta, decision: Decision, events: _Events, question: dict[str, Any]
) -> None:
    assert state.info is not None
    request_id = f"ai-{question['offset']}"
    deadline = meta.now + ctx.limits.ai_timeout_s + ctx.limits.ai_grace_s
    events.add(
        "ai_requested", request_id=request_id, asked_by=question["sender_id"], question_offset=question["offset"],
        deadline=deadline,
    )
    request = AssistantRequest(
        tenant_id=state.info.tenant_id,
        session_id=state.info.id,
        request_id=request_id,
        question=question["text"],
        history=_history(ctx, state),
        equipment=EquipmentContext.from_dict(state.info.equipment),
        mode=state.info.mode,
        asked_by=question["sender_name"],
    )
    decision.effects.append(ctx.ai.spawn(request))
    # The backstop: if this process dies mid-answer, the alarm ends the request.
    decision.alarm = datetime.fromtimestamp(deadline, timezone.utc)


def _ai_participant(state: SessionState) -> Participant:
    return state.participants.get(AI_PARTICIPANT) or Participant(
        id=AI_PARTICIPANT, name=AI_NAME, role="ai", member_role=None, joined_at=""
    )


def _ai_message(state: SessionState, meta: TurnMeta, *, kind: str, text: str, **extra: Any) -> Decision:
    assert state.ai is not None
    events = _Events(meta)
    offset = events.next
    message = _message(
        state, offset, events.at, kind=kind, role="assistant", sender=_ai_participant(state), text=text,
        client_id=None, client_sent_at=None, reply_to=state.ai.request_id, question_offset=state.ai.question_offset,
        **extra,
    )
    events.add("new_message", message=message)
    return Decision(events=events.items, reply={"accepted": True, "offset": offset}, alarm=None)


def _pending(state: SessionState, command: dict[str, Any]) -> bool:
    return state.ai is not None and command.get("request_id") == state.ai.request_id and not state.completed


def ai_delta(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    _system(meta)
    if not _pending(state, command):
        return Decision(reply={"accepted": False})
    return Decision(
        broadcasts=[{
            "type": "ai_delta", "request_id": command["request_id"], "index": command.get("index"),
            "delta": str(command.get("delta", "")),
        }],
        reply={"accepted": True},
    )


def ai_answer(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    _system(meta)
    if not _pending(state, command):
        return Decision(reply={"accepted": False})  # late (timed out, or the session was completed)
    # The assistant is ours but its output is not: store only what the log and
    # the projection can hold (no NUL, valid UTF-8, JSON scalars).
    text = rules.scrub(str(command.get("text", "")))[: ctx.limits.max_text_chars * 4]
    citations = [
        {"n": int(c["n"]), "source": rules.scrub(str(c.get("source", "")))[:300], "page": int(c.get("page") or 0),
         "document_id": rules.scrub(str(c.get("document_id", "")))[:100]}
        for c in (command.get("citations") or [])[:50]
        if isinstance(c, dict) and isinstance(c.get("n"), int) and not isinstance(c.get("page"), bool)
        and isinstance(c.get("page") or 0, int)
    ]
    return _ai_message(state, meta, kind="ai", text=text, citations=citations, usage=rules.json_scalars(command.get("usage")))


def ai_failed(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    _system(meta)
    if not _pending(state, command):
        return Decision(reply={"accepted": False})
    reason = rules.scrub(str(command.get("reason") or "no answer"))[:500]
    return _ai_message(state, meta, kind="ai_error", text=f"The assistant could not answer: {reason}.", error=reason)


def on_alarm(ctx: Context, state: SessionState, meta: TurnMeta) -> Decision:
    """The AI deadline passed: end a request whose answer was lost (e.g. by a restart)."""
    if state.ai is None or state.completed:
        return Decision(alarm=None)
    if meta.now < state.ai.deadline:
        return Decision(alarm=datetime.fromtimestamp(state.ai.deadline, timezone.utc))
    return _ai_message(
        state, meta, kind="ai_error", text="The assistant could not answer: the answer was interrupted.",
        error="interrupted",
    )


# -- presence ------------------------------------------------------------------------------


def connect(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    """A socket of a participant attaches; devices this process no longer holds are dropped.

    ``live`` lists every device of this session the gateway process holds
    right now (the new one included).  Anything else in the state belongs to
    a connection that is gone without a disconnect (a crash, a restart).
    """
    user_id, _ = _caller(state, meta)
    participant = _participant(state, user_id)
    if state.completed:
        return Decision(reply={"completed": True, "participant": participant_view(participant)})
    device = command.get("device")
    if not isinstance(device, str) or not 1 <= len(device) <= 64:
        raise rules.field_error("device", "required, 1-64 characters")
    if meta.subscriber_id is None:
        raise InvalidInput("connect needs the connection (subscriber_id)")
    live = set(command.get("live") or ()) | {device}
    events = _Events(meta)
    devices = {pid: dict(p.devices) for pid, p in state.participants.items()}
    for pid, held in devices.items():
        for gone in sorted(d for d in held if d not in live):
            del held[gone]
            events.add(
                "presence", participant_id=pid, device=gone, connected=False, subscriber_id=None,
                online=bool(held), devices=len(held), reason="gone",
            )
    mine = devices[user_id]
    if device not in mine:
        mine[device] = meta.subscriber_id
        events.add(
            "presence", participant_id=user_id, device=device, connected=True, subscriber_id=meta.subscriber_id,
            online=True, devices=len(mine), reason="connected",
        )
    return Decision(events=events.items, reply={"completed": False, "participant": participant_view(participant)})


def disconnect(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    _system(meta)
    device = command.get("device")
    if state.completed:
        return Decision()
    for pid, p in state.participants.items():
        if device in p.devices:
            remaining = len(p.devices) - 1
            events = _Events(meta)
            events.add(
                "presence", participant_id=pid, device=device, connected=False, subscriber_id=None,
                online=remaining > 0, devices=remaining, reason=str(command.get("reason") or "disconnected"),
            )
            return Decision(events=events.items)
    return Decision()


def typing(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    user_id, _ = _caller(state, meta)
    participant = _participant(state, user_id)
    _require_open(state)
    _only(command, ("active",))
    active = rules.flag("active", command.get("active"), default=True)
    return Decision(broadcasts=[{"type": "typing", "participant_id": user_id, "name": participant.name, "active": active}])


# -- membership and life cycle -------------------------------------------------------------


def create(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    if state.info is not None:
        raise Conflict("this session already exists")
    principal = meta.principal
    session = command.get("session")
    creator = command.get("creator")
    if principal is None or not isinstance(session, dict) or not isinstance(creator, dict):
        raise InvalidInput("create needs a caller, the session and its creator")
    if str(getattr(principal, "tenant_id", "")) != session.get("tenant_id"):
        raise Forbidden("a session is created in the caller's own tenant")
    if session.get("id") != state.key:
        raise InvalidInput("the session id must be the actor's key")
    mode = session.get("mode")
    if mode not in rules.MODES:
        raise rules.field_error("mode", f"one of {', '.join(rules.MODES)}")
    title = rules.optional_text("title", session.get("title"), ctx.limits.max_title_chars)
    equipment = session.get("equipment")
    if equipment is not None and not isinstance(equipment, dict):
        raise rules.field_error("equipment", "an object")
    info = {
        "id": state.key,
        "tenant_id": session["tenant_id"],
        "client_id": rules.uuid_text("client_id", session.get("client_id")),
        "job_id": rules.uuid_text("job_id", session.get("job_id"), required=False),
        "equipment_id": rules.uuid_text("equipment_id", session.get("equipment_id"), required=False),
        "equipment": equipment,
        "mode": mode,
        "title": title,
        "created_by": str(creator["id"]),
        "created_by_name": str(creator["name"]),
    }
    events = _Events(meta)
    events.add("session_created", session=info)
    events.add(
        "participant_joined",
        participant={"id": str(creator["id"]), "name": str(creator["name"]), "role": "primary",
                     "member_role": creator.get("member_role"), "invited_by": None},
    )
    events.add(
        "participant_joined",
        participant={"id": AI_PARTICIPANT, "name": AI_NAME, "role": "ai", "member_role": None, "invited_by": None},
    )
    return Decision(events=events.items, reply={"offset": events.next - 1})


def invite(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    user_id, role = _caller(state, meta)
    _participant_or_dispatcher(state, user_id, role)
    _require_open(state)
    invitee = command.get("user")
    if not isinstance(invitee, dict):
        raise rules.field_error("technician_id", "required")
    invitee_id = rules.uuid_text("technician_id", invitee.get("id"))
    assert invitee_id is not None
    current = state.participants.get(invitee_id)
    if current is not None and current.active:
        return Decision(reply={"participant": participant_view(current), "added": False})
    active = sum(1 for p in state.participants.values() if p.active and p.id != AI_PARTICIPANT)
    if active >= ctx.limits.max_participants:
        raise Conflict(f"a session may have at most {ctx.limits.max_participants} participants")
    joined = {
        "id": invitee_id, "name": str(invitee.get("name") or ""), "role": "invited",
        "member_role": invitee.get("member_role"), "invited_by": user_id,
    }
    events = _Events(meta)
    events.add("participant_joined", participant=joined)
    view = {**joined, "joined_at": events.at, "left_at": None, "online": False, "devices": 0}
    return Decision(events=events.items, reply={"participant": view, "added": True})


def leave(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    user_id, _ = _caller(state, meta)
    current = state.participants.get(user_id)
    if current is None or not current.active or current.id == AI_PARTICIPANT:
        raise Conflict("you are not a participant of this session")
    _require_open(state)
    events = _Events(meta)
    events.add("participant_left", participant_id=user_id, by=user_id)
    closes = [Close(sub, CLOSE_NOT_PARTICIPANT, "you left the session") for sub in current.devices.values()]
    return Decision(events=events.items, effects=list(closes), reply={"left": True})


def complete(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    user_id, role = _caller(state, meta)
    participant = _participant_or_dispatcher(state, user_id, role)
    _require_open(state)
    summary = rules.text("summary", command.get("summary"), ctx.limits.max_summary_chars)
    name = participant.name if participant is not None else str(command.get("by_name") or "")
    events = _Events(meta)
    events.add("session_completed", summary=summary, completed_by=user_id, completed_by_name=name)
    return Decision(
        events=events.items,
        # After the session_completed frame (effects follow events): every socket is told, then closed.
        effects=[Close(None, CLOSE_SESSION_COMPLETED, "session completed")],
        alarm=None,
        reply={"completed_at": events.at, "offset": events.next - 1},
    )


def get(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    _caller(state, meta)
    frame = state_frame(state)
    frame["offset"] = state.last_offset
    return Decision(reply=frame)


def summary(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    _caller(state, meta)
    return Decision(reply=session_view(state))


Handler = Callable[[Context, SessionState, dict[str, Any], TurnMeta], Decision]

CLIENT_COMMANDS: dict[str, Handler] = {
    "create": create,
    "post_message": post_message,
    "post_reading": post_reading,
    "post_attachment": post_attachment,
    "typing": typing,
    "connect": connect,
    "invite": invite,
    "leave": leave,
    "complete": complete,
    "get": get,
    "summary": summary,
}
SYSTEM_COMMANDS: dict[str, Handler] = {
    "disconnect": disconnect,
    "ai_delta": ai_delta,
    "ai_answer": ai_answer,
    "ai_failed": ai_failed,
}


def decide(ctx: Context, state: SessionState, command: dict[str, Any], meta: TurnMeta) -> Decision:
    kind = command.get("type")
    handler = CLIENT_COMMANDS.get(kind) if isinstance(kind, str) else None
    if handler is None and isinstance(kind, str):
        handler = SYSTEM_COMMANDS.get(kind)
    if handler is None:
        raise InvalidInput(f"unknown command {kind!r}")
    return handler(ctx, state, command, meta)
