"""The hub socket: ``/api/v1/hubs/connect`` (real-time lane).

Conversation (see docs/hubs.md)::

    hub                                   cloud
     │── hub_hello (HMAC-signed) ─────────►│  verify signature, skew, nonce
     │◄──────────── hub_welcome / auth_error│  (auth_error: close 4401)
     │◄──── pending commands, in order ─────│  re-sent until acknowledged
     │── printer_status / file_progress / ─►│  every event numbered (seq)
     │   command_ack / printer_* (seq) ...  │
     │◄──────────────────── seq_ack(seq) ───│  after the event is durable
     │── heartbeat / ping ─────────────────►│  pong

The handler only authenticates, validates frames and relays them to the
hub's HubConnection actor; every rule lives in the actor.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import trio

from ensemble.actors import Address
from ensemble.actors.hubs import HUB_KIND
from ensemble.errors import EnsembleError, InvalidInput, Overloaded, Unauthenticated, Unavailable
from ensemble.gateway.realtime import BadFrame, RealtimeSocket, SocketClosed, realtime_route
from ensemble.hubs.protocol import (
    FROM_HUB,
    AuthError,
    Error,
    HandshakeVerifier,
    HubHello,
    HubWelcome,
    Ping,
    Pong,
    from_wire,
    to_wire,
)
from ensemble.log import get_logger
from ensemble.persistence.repos import hubs as hubs_repo
from ensemble.persistence.repos import hubs_live

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["hub_socket", "notify_hub_changed", "HELLO_TIMEOUT_S", "HUB_PATH"]

log = get_logger("ensemble.hubs")

HUB_PATH = "/api/v1/hubs/connect"
HELLO_TIMEOUT_S = 10.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TRY_AGAIN = 1013


def _verifier(services: "Services") -> HandshakeVerifier:
    verifier: HandshakeVerifier | None = services.extras.get("hub_handshake")
    if verifier is None:
        verifier = HandshakeVerifier(skew_s=services.settings.hub_handshake_skew_s)
        services.extras["hub_handshake"] = verifier
    return verifier


def _address(hub_id: uuid.UUID | str) -> Address:
    return Address(HUB_KIND, str(hub_id))


async def _refuse(socket: RealtimeSocket, message: str) -> None:
    try:
        socket.send(to_wire(AuthError(message=message)))
        await socket.close(CLOSE_UNAUTHENTICATED, message[:120])
    except SocketClosed:
        pass


def _error(socket: RealtimeSocket, exc: EnsembleError) -> None:
    socket.send(to_wire(Error(code=exc.code, message=exc.message[:2000])))


async def _hello(socket: RealtimeSocket, services: "Services") -> tuple[HubHello, uuid.UUID] | None:
    """Read and verify the hello; on failure answer ``auth_error``, close 4401 and return None."""
    frame = None
    with trio.move_on_after(HELLO_TIMEOUT_S):
        try:
            frame = await socket.receive()
        except BadFrame as exc:
            await _refuse(socket, f"hub hello: {exc.message}")
            return None
    if frame is None:
        await _refuse(socket, f"hub hello: none received within {HELLO_TIMEOUT_S:g} s")
        return None
    try:
        hello = from_wire(frame, accept=FROM_HUB)
    except InvalidInput as exc:
        await _refuse(socket, f"hub hello: {exc.message}")
        return None
    if not isinstance(hello, HubHello):
        await _refuse(socket, f"hub hello: the first message must be hub_hello, not {hello.type}")
        return None
    try:
        hub_id = uuid.UUID(hello.hub_id)
    except ValueError:
        await _refuse(socket, "hub hello: unknown hub")
        return None
    found = await services.db.run(hubs_repo.credentials, hub_id)
    if found is None:
        await _refuse(socket, "hub hello: unknown hub")
        return None
    _tenant, key = found
    try:
        _verifier(services).verify_hello(hello, key, time.time())
    except Unauthenticated as exc:
        log.info("hub_auth_refused", hub_id=str(hub_id), reason=(exc.details or {}).get("reason"))
        await _refuse(socket, exc.message)
        return None
    except Overloaded as exc:
        socket.send(to_wire(AuthError(message=exc.message)))
        await socket.close(CLOSE_TRY_AGAIN, "too many handshakes")
        return None
    return hello, hub_id


@realtime_route(HUB_PATH, kind="hubs")
async def hub_socket(socket: RealtimeSocket, services: "Services") -> None:
    await socket.accept()
    verified = await _hello(socket, services)
    if verified is None:
        return
    hello, hub_id = verified
    actors, settings = services.actors, services.settings
    address = _address(hub_id)
    conn = secrets.token_hex(8)
    facts = await services.db.run(hubs_live.hub_facts, hub_id)
    claim: tuple[str, Any] | None = None
    if facts["tenant_id"] is None:
        claim = await services.db.run(hubs_repo.issue_claim_code, hub_id, settings.hub_claim_code_ttl_s)
    sub = socket.subscriber(policy="disconnect")
    hello_facts = {
        "firmware": hello.firmware,
        "stream_id": hello.stream_id,
        "hardware_revision": hello.hardware_revision,
        "local_ip": hello.local_ip,
    }
    try:
        reply = await actors.ask(
            address, {"type": "hub_connect", "conn": conn, "sub": sub.id, "facts": facts, "hello": hello_facts}
        )
    except EnsembleError as exc:
        socket.send(to_wire(AuthError(message=f"hub cannot connect now: {exc.message}")))
        await socket.close(CLOSE_TRY_AGAIN, "retry later")
        return
    welcome = HubWelcome(
        hub_id=hello.hub_id,
        server_time=reply["server_time"],
        last_seq=reply["last_seq"],
        heartbeat_s=reply["heartbeat_s"],
        claimed=reply["claimed"],
        claim_code=claim[0] if claim else None,
        claim_code_expires_at=int(claim[1].timestamp() * 1000) if claim else None,
    )
    # Sent before the subscriber is attached, so it is the first frame the hub gets.
    socket.send(to_wire(welcome))
    log.info("hub_connected", hub_id=str(hub_id), claimed=reply["claimed"], last_seq=reply["last_seq"])
    reason = "connection closed"
    try:
        # since=<the connect event>: no catch-up frames; only what the actor Sends.
        await actors.attach(address, sub, since=reply["offset"])
        await actors.ask(address, {"type": "hub_ready", "conn": conn})
        await _relay(socket, services, address, conn)
    except SocketClosed as exc:
        reason = f"closed {exc.code}"
    except (Overloaded, Unavailable) as exc:
        reason = exc.message
        try:
            await socket.close(CLOSE_TRY_AGAIN, "server busy: reconnect")
        except SocketClosed:
            pass
    finally:
        actors.detach(address, sub)
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await actors.tell(address, {"type": "hub_disconnect", "conn": conn, "reason": reason})
            except EnsembleError:
                pass  # shutting down: the offline alarm covers it
        log.info("hub_disconnected", hub_id=str(hub_id), reason=reason)


async def _relay(socket: RealtimeSocket, services: "Services", address: Address, conn: str) -> None:
    actors = services.actors
    while True:
        try:
            frame = await socket.receive()
        except BadFrame as exc:
            socket.send(to_wire(Error(code="invalid_input", message=exc.message[:2000])))
            continue
        try:
            message = from_wire(frame, accept=FROM_HUB)
        except InvalidInput as exc:
            _error(socket, exc)
            continue
        if isinstance(message, Ping):
            socket.send(to_wire(Pong(ts=message.ts)))
            continue
        if isinstance(message, Pong):
            continue
        if isinstance(message, HubHello):
            _error(socket, InvalidInput("already authenticated on this connection"))
            continue
        # In order, waiting for mailbox space: dropping one would lose an
        # event whose seq a later event then covers.
        await actors.tell(address, {"type": "hub_message", "conn": conn, "message": to_wire(message)})


async def notify_hub_changed(services: "Services", hub_id: uuid.UUID) -> None:
    """Tell a hub's actor its facts changed (claimed, released, renamed): it acts at once.

    A released hub is disconnected immediately, its pending commands are
    dropped and its active jobs fail.  Called by the hub REST routes.
    """
    facts = await services.db.run(hubs_live.hub_facts, hub_id)
    try:
        await services.actors.ask(_address(hub_id), {"type": "hub_facts", "facts": facts})
    except EnsembleError as exc:
        log.warning("hub_notify_failed", hub_id=str(hub_id), error=exc.message)
