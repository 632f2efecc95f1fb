"""Diagnostic sessions over REST: create, read, list, send, invite, leave, complete, history.

Writes go to the session's actor (``Address("session", <id>)``), which owns
the rules; reads come from the projection tables the actor writes in the
same commit (``repos.diagnostic_sessions``), so listing a tenant's sessions
never wakes an actor.  The socket (``gateway/sockets/sessions.py``) shares
the helpers at the bottom of this module.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, StrictFloat, StrictInt
from quart import request

from ensemble.actors import Address
from ensemble.actors.sessions import DiagnosticSession, SessionLimits
from ensemble.errors import InvalidInput, NotFound
from ensemble.gateway._negotiation import make_response
from ensemble.gateway._permissions import PERMISSIONS
from ensemble.gateway._ratelimit import RateLimiter
from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import (
    Item,
    ItemList,
    ListQuery,
    RequestModel,
    ResponseModel,
    Text,
    Timestamp,
    sort_param,
)
from ensemble.persistence.repos import clients, diagnostic_sessions, equipment, files, jobs, users

if TYPE_CHECKING:
    from ensemble.server import Services

api = Api("diagnostic_sessions", tag="Diagnostic sessions")

Mode = Literal["guided", "expert", "quick"]
Status = Literal["active", "completed"]
MessageKind = Literal["text", "reading", "attachment", "ai", "ai_error"]
ClientId = Text(64, 1)
_SEND_ERRORS = (409, 413, 429)


# -- shapes -------------------------------------------------------------------------


class ParticipantOut(ResponseModel):
    id: str = Field(description="The technician's user id, or 'ai'.")
    name: str
    role: Literal["primary", "invited", "ai"]
    member_role: str | None
    invited_by: uuid.UUID | None
    joined_at: datetime
    left_at: datetime | None


class EquipmentContextOut(ResponseModel):
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    type: str | None = None
    serial: str | None = None


class SessionOut(ResponseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    client_name: str | None
    job_id: uuid.UUID | None
    equipment_id: uuid.UUID | None
    equipment: EquipmentContextOut | None
    mode: Mode
    title: str | None
    status: Status
    summary: str | None
    is_collaborative: bool
    message_count: int
    last_message_at: datetime | None
    last_offset: int = Field(description="The session's last event offset at the time of reading.")
    completed_at: datetime | None
    completed_by: uuid.UUID | None
    created_at: datetime
    created_by: uuid.UUID | None
    created_by_name: str | None
    updated_at: datetime


class SessionDetailOut(SessionOut):
    participants: list[ParticipantOut]


class MessageOut(ResponseModel):
    """A message as the socket broadcast it; kind-specific fields ride along
    (``reading``, ``attachment``, ``citations``, ``usage``, ``reply_to``, ...)."""

    model_config = ConfigDict(extra="allow")
    id: uuid.UUID
    offset: int
    session_id: uuid.UUID
    kind: MessageKind
    role: Literal["user", "assistant"]
    sender_id: str
    sender_name: str
    sender_role: str
    text: str
    client_id: str | None
    client_sent_at: datetime | None
    at: datetime


class SentOut(ResponseModel):
    offset: int = Field(description="The message's offset in the session (the original one for a retry).")
    duplicate: bool = Field(description="True when this client_id was already stored: nothing new was stored.")
    message_id: uuid.UUID
    message: MessageOut | None


class SessionCreate(RequestModel):
    client_id: uuid.UUID
    job_id: uuid.UUID | None = None
    equipment_id: uuid.UUID | None = Field(None, description="Default: the job's equipment.")
    mode: Mode = "guided"
    title: Text(200, 1) | None = None  # type: ignore[valid-type]


class _Send(RequestModel):
    client_id: ClientId | None = Field(  # type: ignore[valid-type]
        None, description="Your id for this send; a retry with the same id stores nothing new."
    )
    sent_at: Timestamp | None = Field(None, description="When the client wrote it (offline queues send later).")


class MessageIn(_Send):
    text: str = Field(description="The message (size limit ENSEMBLE_SESSION_MAX_TEXT_CHARS).")
    ask_ai: bool = Field(False, description="Also ask the AI assistant; its answer streams into the session.")


class ReadingIn(_Send):
    kind: Text(64, 1)  # type: ignore[valid-type]
    value: StrictInt | StrictFloat
    unit: Text(16)  # type: ignore[valid-type]
    equipment_id: uuid.UUID | None = None
    note: str | None = None


class AttachmentIn(_Send):
    file_id: uuid.UUID = Field(description="A file uploaded with POST /api/v1/files.")
    caption: str | None = None


class CompleteIn(RequestModel):
    summary: str = Field(description="What was found and done (size limit ENSEMBLE_SESSION_MAX_SUMMARY_CHARS).")


class InviteIn(RequestModel):
    technician_id: uuid.UUID


class NoBody(RequestModel):
    pass


class SessionQuery(ListQuery):
    client_id: uuid.UUID | None = None
    status: Status | None = None
    technician_id: uuid.UUID | None = Field(None, description="Sessions this technician took part in.")
    mode: Mode | None = None
    created_from: Timestamp | None = None
    created_to: Timestamp | None = None
    sort: sort_param(diagnostic_sessions.SORTS, "-created_at") = None  # type: ignore[valid-type]


class ClientSessionQuery(ListQuery):
    status: Status | None = None
    sort: sort_param(diagnostic_sessions.SORTS, "-created_at") = None  # type: ignore[valid-type]


class HistoryQuery(ListQuery):
    after_offset: int | None = Field(None, ge=0, description="Only messages after this session offset.")
    kind: MessageKind | None = None


# -- reads ----------------------------------------------------------------------------


@api.route("GET", "/diagnostic/sessions", permission="sessions.read", query=SessionQuery, response=ItemList[SessionOut],
           summary="List the tenant's diagnostic sessions (filter by client, status, technician, mode, date)")
async def list_sessions(call: Call) -> Any:
    q: SessionQuery = call.query
    page = await call.db.run(
        lambda conn: diagnostic_sessions.list_sessions(
            conn, call.tenant_id, client_id=q.client_id, status=q.status, technician_id=q.technician_id, mode=q.mode,
            created_from=q.created_from, created_to=q.created_to, sort=q.sort, limit=q.limit, offset=q.offset,
        )
    )
    return page_of(page)


@api.route("GET", "/clients/<uuid:client_id>/diagnostic-sessions", permission="sessions.read", query=ClientSessionQuery,
           response=ItemList[SessionOut], summary="A client's diagnostic sessions")
async def list_client_sessions(call: Call, client_id: uuid.UUID) -> Any:
    q: ClientSessionQuery = call.query
    tenant_id = call.tenant_id

    async def op(conn: Any) -> Any:
        await clients.get(conn, tenant_id, client_id)  # 404 for a stranger, not an empty list
        return await diagnostic_sessions.list_sessions(
            conn, tenant_id, client_id=client_id, status=q.status, sort=q.sort, limit=q.limit, offset=q.offset
        )

    return page_of(await call.db.run(op))


@api.route("GET", "/diagnostic/sessions/<uuid:session_id>", permission="sessions.read", response=Item[SessionDetailOut],
           summary="A diagnostic session with its participants")
async def get_session(call: Call, session_id: uuid.UUID) -> Any:
    return item(await call.db.run(diagnostic_sessions.get_session, call.tenant_id, session_id))


@api.route("GET", "/diagnostic/sessions/<uuid:session_id>/messages", permission="sessions.read", query=HistoryQuery,
           response=ItemList[MessageOut], summary="The session's full history (messages, readings, attachments) in order")
async def list_messages(call: Call, session_id: uuid.UUID) -> Any:
    q: HistoryQuery = call.query
    page = await call.db.run(
        lambda conn: diagnostic_sessions.list_messages(
            conn, call.tenant_id, session_id, after_offset=q.after_offset, kind=q.kind, limit=q.limit, offset=q.offset
        )
    )
    await refresh_attachment_urls(call.services, call.tenant_id, page.items, _origin())
    return page_of(page)


# -- writes ----------------------------------------------------------------------------


@api.route("POST", "/diagnostic/sessions", permission="sessions.create", body=SessionCreate, response=Item[SessionDetailOut],
           status=201, summary="Start a diagnostic session (you are its primary technician)")
async def create_session(call: Call) -> Any:
    body: SessionCreate = call.body
    me = call.me
    tenant_id = call.tenant_id

    async def lookup(conn: Any) -> tuple[dict[str, Any], dict[str, Any] | None, uuid.UUID | None]:
        client = await _field_lookup(clients.get(conn, tenant_id, body.client_id), "client_id", "no such client")
        equipment_id = body.equipment_id
        if body.job_id is not None:
            job = await _field_lookup(jobs.get(conn, tenant_id, body.job_id), "job_id", "no such job")
            if job["client_id"] != client["id"]:
                raise InvalidInput("the job is for another client", details=[{"field": "job_id", "message": "is for another client"}])
            equipment_id = equipment_id or job["equipment_id"]
        unit = None
        if equipment_id is not None:
            unit = await _field_lookup(equipment.get(conn, tenant_id, equipment_id), "equipment_id", "no such equipment")
            if unit["client_id"] not in (None, client["id"]):
                raise InvalidInput(
                    "the equipment belongs to another client",
                    details=[{"field": "equipment_id", "message": "belongs to another client"}],
                )
        member = await users.get_member(conn, tenant_id, me.user_id)
        return member, unit, equipment_id

    member, unit, equipment_id = await call.db.run(lookup)
    session_id = uuid.uuid4()
    context = None
    if unit is not None:
        context = {
            "name": unit["name"], "manufacturer": unit["manufacturer"], "model": unit["model_number"],
            "type": unit["system_type"], "serial": unit["serial_number"],
        }
    command = {
        "type": "create",
        "session": {
            "id": str(session_id), "tenant_id": str(tenant_id), "client_id": str(body.client_id),
            "job_id": str(body.job_id) if body.job_id else None,
            "equipment_id": str(equipment_id) if equipment_id else None,
            "equipment": context, "mode": body.mode, "title": body.title,
        },
        "creator": {"id": str(me.user_id), "name": member["name"], "member_role": me.role},
    }
    await call.services.actors.ask(session_address(session_id), command, principal=me)
    return item(await call.db.run(diagnostic_sessions.get_session, tenant_id, session_id))


async def _send(call: Call, session_id: uuid.UUID, command: dict[str, Any]) -> Any:
    await require_session(call.services, call.tenant_id, session_id)
    hit_send_limit(session_limiter(call.services), session_behavior(call.services).limits, session_id, call.me.user_id)
    reply = await call.services.actors.ask(session_address(session_id), command, principal=call.me)
    if reply["message"] is None:  # a retry of something older than the actor's recent window
        reply["message"] = await call.db.run(diagnostic_sessions.message_at, call.tenant_id, session_id, reply["offset"])
    if reply["duplicate"]:
        data = Item[SentOut].model_validate({"data": reply}).model_dump(mode="json")
        return make_response(request, data, 200)
    return item(reply)


def _send_fields(body: _Send) -> dict[str, Any]:
    return {"client_id": body.client_id, "sent_at": body.sent_at.isoformat() if body.sent_at else None}


@api.route("POST", "/diagnostic/sessions/<uuid:session_id>/messages", permission="sessions.participate", body=MessageIn,
           response=Item[SentOut], status=201, errors=_SEND_ERRORS,
           summary="Post a message (idempotent with client_id: a retry answers 200 with the original offset)")
async def post_message(call: Call, session_id: uuid.UUID) -> Any:
    body: MessageIn = call.body
    return await _send(call, session_id, {"type": "post_message", "text": body.text, "ask_ai": body.ask_ai, **_send_fields(body)})


@api.route("POST", "/diagnostic/sessions/<uuid:session_id>/readings", permission="sessions.participate", body=ReadingIn,
           response=Item[SentOut], status=201, errors=_SEND_ERRORS,
           summary="Post a reading (a structured measurement: kind, value, unit, equipment)")
async def post_reading(call: Call, session_id: uuid.UUID) -> Any:
    body: ReadingIn = call.body
    command = {
        "type": "post_reading", "kind": body.kind, "value": body.value, "unit": body.unit,
        "equipment_id": str(body.equipment_id) if body.equipment_id else None, "note": body.note, **_send_fields(body),
    }
    return await _send(call, session_id, command)


@api.route("POST", "/diagnostic/sessions/<uuid:session_id>/attachments", permission="sessions.participate",
           body=AttachmentIn, response=Item[SentOut], status=201, errors=_SEND_ERRORS,
           summary="Show an uploaded file (photo, PDF) in the session")
async def post_attachment(call: Call, session_id: uuid.UUID) -> Any:
    body: AttachmentIn = call.body
    await require_session(call.services, call.tenant_id, session_id)
    attachment = await attachment_fields(call.services, call.tenant_id, body.file_id, _origin())
    command = {"type": "post_attachment", "caption": body.caption, **attachment, **_send_fields(body)}
    return await _send(call, session_id, command)


@api.route("PUT", "/diagnostic/sessions/<uuid:session_id>/complete", permission="sessions.participate", body=CompleteIn,
           response=Item[SessionDetailOut], errors=(409, 413),
           summary="Complete the session with a summary: it becomes read-only and its sockets are closed")
async def complete_session(call: Call, session_id: uuid.UUID) -> Any:
    body: CompleteIn = call.body
    await require_session(call.services, call.tenant_id, session_id)
    member = await call.db.run(users.get_member, call.tenant_id, call.me.user_id)
    await call.services.actors.ask(
        session_address(session_id), {"type": "complete", "summary": body.summary, "by_name": member["name"]},
        principal=call.me,
    )
    return item(await call.db.run(diagnostic_sessions.get_session, call.tenant_id, session_id))


@api.route("POST", "/diagnostic/sessions/<uuid:session_id>/invite", permission="sessions.participate", body=InviteIn,
           response=Item[ParticipantOut], errors=(409,),
           summary="Invite a technician of the tenant (participants and dispatchers may invite)")
async def invite(call: Call, session_id: uuid.UUID) -> Any:
    body: InviteIn = call.body
    tenant_id = call.tenant_id
    await require_session(call.services, tenant_id, session_id)
    try:
        member = await call.db.run(users.get_member, tenant_id, body.technician_id)
    except NotFound:
        raise InvalidInput("no such technician", details=[{"field": "technician_id", "message": "not a member of this tenant"}]) from None
    if member["role"] not in PERMISSIONS["sessions.participate"] or not member["is_active"]:
        raise InvalidInput(
            "this member cannot take part in sessions",
            details=[{"field": "technician_id", "message": f"role {member['role']!r} cannot take part"}],
        )
    reply = await call.services.actors.ask(
        session_address(session_id),
        {"type": "invite", "user": {"id": str(member["id"]), "name": member["name"], "member_role": member["role"]}},
        principal=call.me,
    )
    return item(reply["participant"])


@api.route("POST", "/diagnostic/sessions/<uuid:session_id>/leave", permission="sessions.participate", body=NoBody,
           errors=(409,), summary="Leave the session (your sockets to it are closed with 4403)")
async def leave(call: Call, session_id: uuid.UUID) -> None:
    await require_session(call.services, call.tenant_id, session_id)
    await call.services.actors.ask(session_address(session_id), {"type": "leave"}, principal=call.me)


# -- shared with the socket --------------------------------------------------------------


def session_address(session_id: uuid.UUID | str) -> Address:
    return Address("session", str(session_id))


def session_behavior(services: "Services") -> DiagnosticSession:
    behavior = services.actors.behaviors["session"]
    assert isinstance(behavior, DiagnosticSession)
    return behavior


async def require_session(services: "Services", tenant_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """404 unless the tenant has this session (checked on the projection, so no actor wakes for a stranger)."""
    if not await services.db.run(diagnostic_sessions.exists, tenant_id, session_id):
        raise NotFound("no such session")


def session_limiter(services: "Services") -> RateLimiter:
    """One limiter for REST and the socket, so a participant has one send budget."""
    limiter: RateLimiter | None = services.extras.get("session_limiter")
    if limiter is None:
        limiter = services.extras["session_limiter"] = RateLimiter(services.settings.rate_limit_max_buckets)
    return limiter


def hit_send_limit(limiter: RateLimiter, limits: SessionLimits, session_id: uuid.UUID | str, user_id: uuid.UUID) -> None:
    """The per-participant send rate: ``send_burst`` at once, ``send_per_minute`` sustained."""
    limiter.hit(
        ("session-send", str(session_id), str(user_id)),
        per_period=limits.send_burst,
        period_s=limits.send_burst * 60.0 / limits.send_per_minute,
        what="messages in this session",
    )


def _origin() -> str:
    return request.host_url.rstrip("/")


async def _signed(services: "Services", tenant_id: uuid.UUID | str, object_key: str, origin: str) -> tuple[str, str]:
    ttl = services.settings.signed_url_ttl_s
    url = await services.objects.scoped(tenant_id).signed_url(object_key, ttl)
    if url.startswith("/"):  # the local store signs paths
        url = origin + url
    return url, (datetime.now(timezone.utc) + timedelta(seconds=ttl)).isoformat()


async def attachment_fields(services: "Services", tenant_id: uuid.UUID, file_id: uuid.UUID, origin: str) -> dict[str, Any]:
    """The file's metadata and a signed URL, for a ``post_attachment`` command."""
    try:
        row = await services.db.run(files.get, tenant_id, file_id)
    except NotFound:
        raise InvalidInput("no such file", details=[{"field": "file_id", "message": "upload it with POST /api/v1/files first"}]) from None
    url, expires = await _signed(services, tenant_id, row["object_key"], origin)
    return {
        "file": {"id": str(row["id"]), "name": row["name"], "content_type": row["content_type"], "size_bytes": row["size_bytes"]},
        "url": url,
        "url_expires_at": expires,
    }


async def refresh_attachment_urls(services: "Services", tenant_id: uuid.UUID, messages: list[dict[str, Any]], origin: str) -> None:
    """Stored signed URLs expire; history readers get fresh ones (None when the file was deleted)."""
    wanted = [m for m in messages if m.get("kind") == "attachment" and isinstance(m.get("attachment"), dict)]
    if not wanted:
        return
    ids = list({uuid.UUID(m["attachment"]["file_id"]) for m in wanted})
    keys = await services.db.run(
        lambda conn: conn.fetch("SELECT id, object_key FROM files WHERE tenant_id = $1 AND id = ANY($2::uuid[])", tenant_id, ids)
    )
    by_id = {str(r["id"]): r["object_key"] for r in keys}
    for message in wanted:
        attachment = dict(message["attachment"])
        key = by_id.get(attachment["file_id"])
        if key is None:
            attachment["url"], attachment["url_expires_at"] = None, None
        else:
            attachment["url"], attachment["url_expires_at"] = await _signed(services, tenant_id, key, origin)
        message["attachment"] = attachment


async def _field_lookup(lookup: Any, field: str, message: str) -> dict[str, Any]:
    try:
        row: dict[str, Any] = await lookup
    except NotFound:
        raise InvalidInput(message, details=[{"field": field, "message": "not found in this tenant"}]) from None
    return row
