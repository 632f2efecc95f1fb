"""The tenant dashboard socket: ``/api/v1/dashboard/ws`` (also ``/ws/dashboard``, the document's path).

Conversation ("Dashboard WebSocket Protocol" of the product document)::

    dashboard                             cloud
     │── auth {token} ────────────────────►│  first frame, within 10 s
     │◄─────────── auth_success / auth_error│  (auth_error: close 4401/4403)
     │◄──────────────────────── snapshot ───│  every printer, hub, active job
     │◄── printer_status / job_update / ────│  live, each with (epoch, offset)
     │    hub_status / alert                │
     │── subscribe / unsubscribe {printers}►│  default: all printers
     │── ping ────────────────────────────►│  pong

``?since=<offset>`` on reconnect replays exactly what was missed (or a
``resync`` with a full snapshot when the gap is older than the retained log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ensemble.actors import Address
from ensemble.actors.dashboards import DASHBOARD_KIND, PrinterFilter, install_printer_filter
from ensemble.actors.hubs import dashboard_job, dashboard_printer
from ensemble.errors import EnsembleError, Forbidden, InvalidInput, NotFound, Unauthenticated
from ensemble.gateway._logins import login_watch
from ensemble.gateway._auth import authenticate_token
from ensemble.gateway.realtime import BadFrame, RealtimeSocket, SocketClosed, realtime_route
from ensemble.hubs.protocol import (
    FROM_DASHBOARD,
    Auth,
    AuthError,
    AuthSuccess,
    Error,
    Ping,
    Pong,
    Subscribe,
    Unsubscribe,
    from_wire,
    to_wire,
)
from ensemble.persistence.repos import hubs_live

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["dashboard_socket", "shape_catalog", "DASHBOARD_PATHS", "AUTH_TIMEOUT_S"]

DASHBOARD_PATHS = ("/api/v1/dashboard/ws", "/ws/dashboard")
AUTH_TIMEOUT_S = 10.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013


async def _refuse(socket: RealtimeSocket, code: int, message: str) -> None:
    try:
        socket.send(to_wire(AuthError(message=message)))
        await socket.close(code, message[:120])
    except SocketClosed:
        pass


def shape_catalog(raw: dict[str, Any]) -> dict[str, Any]:
    """The rows of ``hubs_live.tenant_catalog`` in the dashboard's shapes."""
    printers = []
    for p in raw["printers"]:
        detail = {**p["detail"], "printer_id": p["printer_id"], "status": p["status"]}
        shaped = dashboard_printer(p["hub_id"] or "", detail)
        if p["hub_id"] is None:
            shaped.pop("hub_id", None)
        shaped["name"] = p["name"]
        printers.append(shaped)
    hubs = [{k: v for k, v in h.items() if v is not None} for h in raw["hubs"]]
    jobs = []
    for j in raw["jobs"]:
        shaped = dashboard_job(j)
        shaped["v"] = [j["hub_id"], j["version"]] if j["hub_id"] else None
        jobs.append(shaped)
    return {"printers": printers, "hubs": hubs, "jobs": jobs}


def _since(socket: RealtimeSocket) -> int | None:
    raw = socket.query.get("since")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


async def dashboard_socket(socket: RealtimeSocket, services: "Services") -> None:
    await socket.accept()
    frame = None
    with trio.move_on_after(AUTH_TIMEOUT_S):
        try:
            frame = await socket.receive()
        except BadFrame as exc:
            await _refuse(socket, CLOSE_UNAUTHENTICATED, f"auth: {exc.message}")
            return
    if frame is None:
        await _refuse(socket, CLOSE_UNAUTHENTICATED, f"send auth first (within {AUTH_TIMEOUT_S:g} s)")
        return
    try:
        auth = from_wire(frame, accept=FROM_DASHBOARD)
    except InvalidInput as exc:
        await _refuse(socket, CLOSE_UNAUTHENTICATED, f"auth: {exc.message}")
        return
    if not isinstance(auth, Auth):
        await _refuse(socket, CLOSE_UNAUTHENTICATED, "the first message must be auth")
        return
    try:
        principal = await authenticate_token(services, auth.token, "printers.read", denied="may not watch the dashboard")
        user_id, tenant_id = principal.user_id, principal.tenant_id
    except Forbidden as exc:
        await _refuse(socket, CLOSE_FORBIDDEN, exc.message)
        return
    except Unauthenticated as exc:
        await _refuse(socket, CLOSE_UNAUTHENTICATED, exc.message)
        return
    socket.send(to_wire(AuthSuccess(user_id=str(user_id), tenant_id=str(tenant_id))))
    actors = services.actors
    address = Address(DASHBOARD_KIND, str(tenant_id))
    sub = socket.subscriber(policy="coalesce")
    chooser = install_printer_filter(sub)
    try:
        catalog = shape_catalog(await services.db.run(hubs_live.tenant_catalog, tenant_id))
        await actors.ask(address, {"type": "sync_catalog", "catalog": catalog})
        await actors.attach(address, sub, since=_since(socket))
    except EnsembleError as exc:
        socket.send(to_wire(Error(code=exc.code, message=exc.message)))
        await socket.close(CLOSE_TRY_AGAIN, "retry later")
        return
    unwatch = login_watch(services).watch(
        socket, session_id=principal.session_id, user_id=user_id, tenant_id=tenant_id, permission="printers.read"
    )
    try:
        await _converse(socket, services, address, chooser)
    except SocketClosed:
        pass
    finally:
        unwatch()
        actors.detach(address, sub)


async def _converse(socket: RealtimeSocket, services: "Services", address: Address, chooser: PrinterFilter) -> None:
    while True:
        try:
            frame = await socket.receive()
        except BadFrame as exc:
            socket.send(to_wire(Error(code="invalid_input", message=exc.message[:2000])))
            continue
        try:
            message = from_wire(frame, accept=FROM_DASHBOARD)
        except InvalidInput as exc:
            socket.send(to_wire(Error(code=exc.code, message=exc.message[:2000])))
            continue
        if isinstance(message, Ping):
            socket.send(to_wire(Pong(ts=message.ts)))
        elif isinstance(message, (Subscribe, Unsubscribe)):
            printers = None if message.printers is None else list(message.printers)
            try:
                await _change_subscription(services, address, chooser, message, printers)
            except NotFound as exc:
                socket.send(to_wire(Error(code=exc.code, message=exc.message)))
        elif isinstance(message, Auth):
            socket.send(to_wire(Error(code="invalid_input", message="already authenticated")))


async def _change_subscription(
    services: "Services", address: Address, chooser: PrinterFilter, message: Subscribe | Unsubscribe,
    printers: list[str] | None,
) -> None:
    known: list[str] = []
    if printers:
        answer = await services.actors.ask(address, {"type": "check_printers", "printer_ids": printers})
        if answer["unknown"]:
            # Another tenant's printer and a printer that does not exist look the same.
            shown = ", ".join(answer["unknown"][:10])
            raise NotFound(f"no such printers in this tenant: {shown}")
    if isinstance(message, Subscribe):
        chooser.subscribe(printers)
    else:
        if printers is not None and chooser.printers is None:
            described = await services.actors.ask(address, {"type": "describe"})
            known = [p["printer_id"] for p in described["printers"]]
        chooser.unsubscribe(printers, known)


for _path in DASHBOARD_PATHS:
    realtime_route(_path, kind="dashboards")(dashboard_socket)
