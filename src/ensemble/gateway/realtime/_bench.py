"""An unauthenticated socket on the EchoRoom example actor, for tests and benchmarks only.

``/bench/rooms/{key}/ws`` is registered only by :func:`register_bench_routes`:
from test code, or by the server when ``ENSEMBLE_BENCH_ROUTES=1`` (default
off).  It is the smallest complete handler on the lane:

- on connect: ``attach`` (``?since=N`` for exactly the missed events);
- ``{"type": "say", "text": ..., "client_id": ...}``: a durable event,
  broadcast after commit;
- ``{"type": "typing", "who": ...}``: an ephemeral broadcast;
- ``{"type": "echo", ...}``: answered on this socket only (round trips).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ensemble.actors import Address
from ensemble.errors import EnsembleError
from ensemble.gateway.realtime._errors import BadFrame
from ensemble.gateway.realtime._routes import realtime_route
from ensemble.gateway.realtime._socket import RealtimeSocket

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["BENCH_ROOM_ROUTE", "register_bench_routes", "bench_room_socket"]

BENCH_ROOM_ROUTE = "/bench/rooms/{key}/ws"


def register_bench_routes() -> None:
    realtime_route(BENCH_ROOM_ROUTE, kind="bench")(bench_room_socket)


async def bench_room_socket(socket: RealtimeSocket, services: "Services", key: str) -> None:
    raw_since = socket.query.get("since")
    since = int(raw_since) if raw_since is not None and raw_since.isdigit() else None
    if raw_since is not None and since is None:
        await socket.reject(422, "invalid_input", "since must be a non-negative integer")
        return
    await socket.accept()
    address = Address("room", key)
    sub = socket.subscriber(policy="disconnect")
    try:
        await services.actors.attach(address, sub, since=since)
    except EnsembleError as exc:
        await socket.close(exc.close_code, exc.message)
        return
    try:
        while True:
            try:
                message = await socket.receive()
            except BadFrame as exc:
                socket.send(exc.to_message())
                continue
            _handle(socket, services, address, sub.id, message)
    finally:
        services.actors.detach(address, sub)


def _handle(socket: RealtimeSocket, services: "Services", address: Address, sub_id: int, message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "say":
        command: dict[str, Any] = {"type": "say", "text": message.get("text"), "client_id": message.get("client_id")}
    elif kind == "typing":
        command = {"type": "typing", "who": message.get("who")}
    elif kind == "echo":
        socket.send({**message, "type": "echo_reply"})
        return
    else:
        socket.send({"type": "error", "error": "invalid_input", "message": f"unknown message type {kind!r}"})
        return
    try:
        services.actors.tell_nowait(address, command, subscriber_id=sub_id)
    except EnsembleError as exc:
        socket.send({"type": "error", "error": exc.code, "message": exc.message})


