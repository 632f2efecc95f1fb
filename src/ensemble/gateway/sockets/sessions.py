"""The diagnostic session socket: ``/api/v1/diagnostic/sessions/{session_id}/ws``.

Conversation (see docs/sessions.md for every frame)::

    technician                                   cloud
     │── GET …/ws?token=…&since=… (upgrade) ──────►│  token checked before the upgrade:
     │◄──────────────── 101, or 401/403/404 JSON ──│  only participants of the tenant
     │   (or, without ?token: 101, then            │
     │── auth {token} ───────────────────────────►│  within auth_timeout_s, else 4401)
     │◄───────── session_state, or the missed ─────│  every event frame carries
     │           events since `since` (or resync)  │  (epoch, offset)
     │◄── participant_joined/left, presence, ──────│
     │    new_message, reading, attachment_added,  │
     │    typing, ai_requested, ai_delta, …        │
     │── message / reading / attachment ─────────►│  ack {client_id, message_offset}
     │── typing / ping / leave ──────────────────►│  after the event frame
     │◄──────────── session_completed, close 4410 ─│

The handler authenticates, checks the send rate, turns frames into commands
and relays them to the session's actor, where every rule lives.  A bad frame
is answered with an ``error`` frame and the socket stays open.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import trio

from ensemble.actors import Subscriber
from ensemble.actors.sessions import (
    CLOSE_AUTH_FAILED,
    CLOSE_NOT_PARTICIPANT,
    CLOSE_SESSION_COMPLETED,
    SessionLimits,
)
from ensemble.errors import EnsembleError, Forbidden, InvalidInput, NotFound, RateLimited, Unauthenticated
from ensemble.gateway._auth import Principal, authenticate_token
from ensemble.gateway._logins import login_watch
from ensemble.gateway._ratelimit import RateLimiter
from ensemble.gateway.realtime import BadFrame, RealtimeSocket, SocketClosed, realtime_route
from ensemble.gateway.routes.sessions import (
    attachment_fields,
    hit_send_limit,
    require_session,
    session_address,
    session_behavior,
    session_limiter,
)
from ensemble.log import get_logger

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["session_socket", "SESSION_PATHS", "DeviceRegistry"]

log = get_logger("ensemble.sessions")

SESSION_PATHS = ("/api/v1/diagnostic/sessions/{session_id}/ws", "/api/v1/sessions/{session_id}/ws")
CLOSE_TRY_AGAIN = 1013

# Client frame type -> (actor command, fields the frame may carry).
_SENDS = {
    "message": ("post_message", None),
    "reading": ("post_reading", None),
    "attachment": ("post_attachment", frozenset({"file_id", "caption", "client_id", "sent_at"})),
}


class DeviceRegistry:
    """The session sockets this process holds, by session: the truth about presence.

    Every ``connect`` hands the actor the full list, so a device the actor
    still counts after a crash or a lost ``disconnect`` is dropped then.
    """

    def __init__(self) -> None:
        self._devices: dict[str, set[str]] = {}

    def add(self, session_id: str, device: str) -> list[str]:
        held = self._devices.setdefault(session_id, set())
        held.add(device)
        return sorted(held)

    def remove(self, session_id: str, device: str) -> None:
        held = self._devices.get(session_id)
        if held is not None:
            held.discard(device)
            if not held:
                del self._devices[session_id]

    def count(self, session_id: str | None = None) -> int:
        if session_id is not None:
            return len(self._devices.get(session_id, ()))
        return sum(len(held) for held in self._devices.values())


def _registry(services: "Services") -> DeviceRegistry:
    registry: DeviceRegistry | None = services.extras.get("session_devices")
    if registry is None:
        registry = services.extras["session_devices"] = DeviceRegistry()
    return registry


async def authenticate(services: "Services", token: str) -> Principal:
    """The verified caller, as REST builds it (the login session must still be live)."""
    return await authenticate_token(services, token, "sessions.participate", denied="may not join diagnostic sessions")


def _query_token(socket: RealtimeSocket) -> str | None:
    token = socket.query.get("token") or socket.query.get("access_token")
    if token:
        return token
    scheme, _, value = socket.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _since(socket: RealtimeSocket) -> int | None:
    raw = socket.query.get("since")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("since must be a non-negative integer (the last offset you saw)")
    return int(raw)


def _origin(socket: RealtimeSocket) -> str:
    scheme = "https" if socket.headers.get("x-forwarded-proto", "").lower() == "https" else "http"
    return f"{scheme}://{socket.headers.get('host', 'localhost')}"


def error_frame(exc: EnsembleError, client_id: Any = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "error": exc.code, "message": exc.message}
    if exc.details is not None:
        frame["details"] = exc.details
    if isinstance(exc, RateLimited):
        frame["retry_after"] = round(exc.retry_after, 3)
    if isinstance(client_id, str):
        frame["client_id"] = client_id
    return frame


_CLOSE_FOR = {Unauthenticated: CLOSE_AUTH_FAILED, Forbidden: CLOSE_NOT_PARTICIPANT, NotFound: 4404}
_HTTP_FOR = {Unauthenticated: 401, Forbidden: 403, NotFound: 404, InvalidInput: 400}


async def _refuse(socket: RealtimeSocket, exc: EnsembleError) -> None:
    """Before accept: an HTTP error.  After: an error frame, then the matching close code."""
    try:
        if _is_connecting(socket):
            status = next((s for cls, s in _HTTP_FOR.items() if isinstance(exc, cls)), exc.status)
            await socket.reject(status, exc.code, exc.message)
            return
        code = next((c for cls, c in _CLOSE_FOR.items() if isinstance(exc, cls)), CLOSE_TRY_AGAIN)
        socket.send(error_frame(exc))
        await socket.close(code, exc.message[:120])
    except SocketClosed:
        pass


def _is_connecting(socket: RealtimeSocket) -> bool:
    return bool(socket.statistics()["state"] == "connecting")


async def _first_frame_auth(socket: RealtimeSocket, services: "Services", timeout: float) -> Principal | None:
    """After accept, without a token in the URL: the first frame must be ``auth``."""
    frame: dict[str, Any] | None = None
    with trio.move_on_after(timeout):
        try:
            frame = await socket.receive()
        except BadFrame as exc:
            await _refuse(socket, Unauthenticated(f"the first frame must be auth ({exc.message})"))
            return None
    if frame is None:
        await _refuse(socket, Unauthenticated(f"send auth {{token}} within {timeout:g} s"))
        return None
    token = frame.get("token")
    if frame.get("type") != "auth" or not isinstance(token, str) or not token:
        await _refuse(socket, Unauthenticated("the first frame must be auth {token}"))
        return None
    try:
        return await authenticate(services, token)
    except EnsembleError as exc:
        await _refuse(socket, exc)
        return None


async def session_socket(socket: RealtimeSocket, services: "Services", session_id: str) -> None:
    limits = session_behavior(services).limits
    try:
        sid = uuid.UUID(session_id)
        since = _since(socket)
    except ValueError:
        await socket.reject(404, "not_found", "no such session")
        return
    except InvalidInput as exc:
        await socket.reject(400, exc.code, exc.message)
        return
    token = _query_token(socket)
    principal: Principal | None = None
    if token is not None:
        try:
            principal = await authenticate(services, token)
            await require_session(services, principal.tenant_id, sid)
        except EnsembleError as exc:
            await _refuse(socket, exc)
            return
    else:
        try:
            await socket.accept()
        except SocketClosed:
            return
        principal = await _first_frame_auth(socket, services, limits.auth_timeout_s)
        if principal is None:
            return
        try:
            await require_session(services, principal.tenant_id, sid)
        except EnsembleError as exc:
            await _refuse(socket, exc)
            return
    await _join(socket, services, limits, principal, str(sid), since)


async def _join(
    socket: RealtimeSocket, services: "Services", limits: SessionLimits, principal: Principal, sid: str, since: int | None
) -> None:
    actors = services.actors
    address = session_address(sid)
    registry = _registry(services)
    device = uuid.uuid4().hex
    sub = socket.subscriber(policy="disconnect")
    live = registry.add(sid, device)
    # Set before asking: if we are cancelled while the connect is in flight,
    # the actor may still record the device, and the disconnect must follow.
    connected = True
    try:
        try:
            reply = await actors.ask(
                address, {"type": "connect", "device": device, "live": live}, principal=principal, subscriber_id=sub.id
            )
        except EnsembleError as exc:
            connected = not isinstance(exc, (Forbidden, NotFound))  # refused: nothing was recorded
            await _refuse(socket, exc)
            return
        connected = not reply["completed"]
        try:
            if _is_connecting(socket):
                await socket.accept()
            await actors.attach(address, sub, since=since)
        except EnsembleError as exc:
            await _refuse(socket, exc)
            return
        if reply["completed"]:
            # Read-only: what the client missed (or the state), then the close.
            await _drained(socket)
            await socket.close(CLOSE_SESSION_COMPLETED, "session completed")
            return
        unwatch = login_watch(services).watch(
            socket, session_id=principal.session_id, user_id=principal.user_id, tenant_id=principal.tenant_id,
            permission="sessions.participate",
        )
        try:
            await _converse(socket, services, limits, principal, sid, sub)
        finally:
            unwatch()
    except SocketClosed:
        pass
    finally:
        registry.remove(sid, device)
        actors.detach(address, sub)
        if connected:
            # Told, not asked: this runs while the socket (or the server) goes away.
            actors.tell_soon(address, {"type": "disconnect", "device": device})


async def _drained(socket: RealtimeSocket, timeout: float = 5.0) -> None:
    with trio.move_on_after(timeout):
        while socket.statistics()["queued_frames"] and not socket.closed:
            await trio.sleep(0.01)


async def _converse(
    socket: RealtimeSocket, services: "Services", limits: SessionLimits, principal: Principal, sid: str, sub: Subscriber
) -> None:
    limiter = session_limiter(services)
    while True:
        try:
            frame = await socket.receive()
        except BadFrame as exc:
            socket.send(exc.to_message())
            continue
        try:
            await _handle(socket, services, limits, limiter, principal, sid, sub, frame)
        except EnsembleError as exc:
            socket.send(error_frame(exc, frame.get("client_id")))


async def _handle(
    socket: RealtimeSocket, services: "Services", limits: SessionLimits, limiter: RateLimiter, principal: Principal,
    sid: str, sub: Subscriber, frame: dict[str, Any],
) -> None:
    kind = frame.get("type")
    actors = services.actors
    address = session_address(sid)
    if kind in _SENDS:
        command_type, allowed = _SENDS[kind]
        fields = {k: v for k, v in frame.items() if k != "type"}
        if allowed is not None:
            unknown = sorted(set(fields) - allowed)
            if unknown:
                raise InvalidInput(
                    f"unknown fields: {', '.join(unknown)}", details=[{"field": f, "message": "unknown field"} for f in unknown]
                )
        hit_send_limit(limiter, limits, sid, principal.user_id)
        if kind == "attachment":
            file_id = frame.get("file_id")
            try:
                parsed = uuid.UUID(file_id) if isinstance(file_id, str) else None
            except ValueError:
                parsed = None
            if parsed is None:
                raise InvalidInput("file_id: required, a UUID", details=[{"field": "file_id", "message": "required, a UUID"}])
            fields.pop("file_id")
            fields.update(await attachment_fields(services, principal.tenant_id, parsed, _origin(socket)))
        # The ack arrives through the subscription, right after the event frame.
        await actors.ask(address, {**fields, "type": command_type}, principal=principal, subscriber_id=sub.id)
    elif kind == "typing":
        try:
            limiter.hit(("session-typing", sid, str(principal.user_id)), per_period=limits.typing_per_minute, period_s=60.0)
        except RateLimited:
            return  # typing indicators are best effort
        fields = {k: v for k, v in frame.items() if k != "type"}
        actors.tell_nowait(address, {**fields, "type": "typing"}, principal=principal, subscriber_id=sub.id)
    elif kind == "ping":
        socket.send({"type": "pong", **({"ts": frame["ts"]} if "ts" in frame else {})})
    elif kind == "leave":
        await actors.ask(address, {"type": "leave"}, principal=principal, subscriber_id=sub.id)
    elif kind == "auth":
        raise InvalidInput("already authenticated")
    elif not isinstance(kind, str):
        raise InvalidInput("every frame needs a type", details=[{"field": "type", "message": "required, a string"}])
    else:
        raise UnknownFrameType(f"unknown frame type {kind[:40]!r}")


class UnknownFrameType(InvalidInput):
    code = "unknown_type"


for _path in SESSION_PATHS:
    realtime_route(_path, kind="sessions")(session_socket)
