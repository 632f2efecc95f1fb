"""One port for everything: the lane's listener routes each new connection.

The lane accepts TCP connections itself and reads the request head (bounded
in size and time).  A WebSocket upgrade to a registered real-time path is
served here; an upgrade to any other path gets a 404; everything else
(REST, a non-upgrade request to a real-time path, HTTP/2 prior knowledge,
anything unparseable) is handed to Hypercorn with the bytes already read.
Only the first request of a connection is routed: later requests on a
keep-alive connection stay with Hypercorn (browsers open a fresh connection
for a WebSocket).
"""

from __future__ import annotations

import errno
import socket as stdlib_socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.utils import repr_socket_addr
from wsproto import ConnectionType
from wsproto.events import Request
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from ensemble.actors import WireFormat
from ensemble.gateway.realtime._errors import CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_NORMAL, BadFrame, SocketClosed
from ensemble.gateway.realtime._head import RequestHead, head_end, json_response, parse_head
from ensemble.gateway.realtime._hypercorn import HypercornBridge, hypercorn_config
from ensemble.gateway.realtime._lane import Lane
from ensemble.gateway.realtime._routes import RealtimeRoute, match_route, registered_routes
from ensemble.gateway.realtime._settings import RealtimeSettings, load_realtime_settings
from ensemble.gateway.realtime._socket import RealtimeSocket
from ensemble.log import get_logger

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["serve_gateway", "choose_format", "SUBPROTOCOLS"]

log = get_logger("ensemble.gateway.realtime")

SUBPROTOCOLS: dict[str, WireFormat] = {"ensemble.json": "json", "ensemble.msgpack": "msgpack"}
_ACCEPT_BATCH = 64  # connections accepted per wake-up before letting others run


def choose_format(subprotocols: list[str], query: dict[str, str]) -> tuple[WireFormat | None, str | None]:
    """(wire format, subprotocol to select): the first of ours the client offers,
    else ``?format=``, else JSON.  (None, None) for an unknown ``?format``."""
    for offered in subprotocols:
        if offered in SUBPROTOCOLS:
            return SUBPROTOCOLS[offered], offered
    requested = query.get("format")
    if requested is None:
        return "json", None
    if requested in ("json", "msgpack"):
        return requested, None  # type: ignore[return-value]
    return None, None


async def serve_gateway(
    services: "Services",
    app: Any,
    host: str,
    port: int,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    realtime: RealtimeSettings | None = None,
    config: HypercornConfig | None = None,
) -> None:
    """Serve REST (Hypercorn) and the real-time lane on one port until ``shutdown_trigger`` returns.

    ``task_status.started`` gets the bound URLs (``["http://127.0.0.1:PORT"]``).
    On shutdown: stop accepting, close every real-time socket with 1001, let
    Hypercorn finish requests in flight, all within ``shutdown_timeout_s``;
    then the ASGI lifespan shutdown.  ``config`` overrides the Hypercorn
    configuration derived from the settings (its ``bind`` is ignored).
    """
    # Late: _logins imports this package (a socket type, SocketClosed).
    from ensemble.gateway._logins import watch_logins

    realtime = realtime or load_realtime_settings()
    if realtime.bench_routes:
        from ensemble.gateway.realtime._bench import register_bench_routes

        register_bench_routes()
    settings = services.settings
    config = config or hypercorn_config(settings)
    config.set_statsd_logger_class(StatsdLogger)
    hypercorn = HypercornBridge(app, config)
    lane = Lane(
        services,
        realtime,
        max_message_bytes=settings.max_ws_message_bytes,
        buffer_frames=settings.actor_subscriber_buffer,
    )
    gauge = _connection_gauge(app)
    listener = _listen(host, port, realtime.backlog)
    services.extras["realtime_lane"] = lane
    services.metric_callbacks.append(lane.metric_samples)
    lane.gc.install()
    try:
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(hypercorn.lifespan.handle_lifespan)
            await hypercorn.lifespan.wait_for_startup()
            async with trio.open_nursery() as connections:
                lane.bind(connections)
                router = _Router(lane, hypercorn, gauge)
                async with trio.open_nursery() as control:
                    control.start_soon(_accept_loop, listener, connections, router)
                    control.start_soon(lane.keepalive)
                    control.start_soon(watch_logins, services)
                    bound = repr_socket_addr(listener.family, listener.getsockname())
                    routes = [route.template for route in registered_routes()]
                    log.info("realtime_lane_listening", url=f"http://{bound}", routes=routes)
                    task_status.started([f"http://{bound}"])
                    await shutdown_trigger()
                    control.cancel_scope.cancel()
                trio.lowlevel.notify_closing(listener)
                listener.close()
                lane.shutdown()
                await hypercorn.terminate()
                connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
            await hypercorn.lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()
    finally:
        if listener.fileno() != -1:
            trio.lowlevel.notify_closing(listener)
            listener.close()
        lane.gc.remove()
        services.extras.pop("realtime_lane", None)
        if lane.metric_samples in services.metric_callbacks:
            services.metric_callbacks.remove(lane.metric_samples)


def _listen(host: str, port: int, backlog: int) -> stdlib_socket.socket:
    family = stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET
    sock = stdlib_socket.socket(family, stdlib_socket.SOCK_STREAM)
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _accept_loop(listener: stdlib_socket.socket, nursery: trio.Nursery, router: "_Router") -> None:
    while True:
        await trio.lowlevel.wait_readable(listener)
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, addr = listener.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: back off instead of spinning.
                    log.warning("accept_failed", error=exc.strerror)
                    await trio.sleep(0.1)
                break
            conn.setblocking(False)
            conn.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
            nursery.start_soon(router.connection, conn, addr)
        await trio.lowlevel.checkpoint()


def _connection_gauge(app: Any) -> Any:
    try:
        from ensemble.gateway._state import EXTENSION

        return app.extensions[EXTENSION].metrics.websocket_connections
    except (AttributeError, KeyError, ImportError):
        return None


class _Router:
    def __init__(self, lane: Lane, hypercorn: HypercornBridge, gauge: Any) -> None:
        self.lane = lane
        self.hypercorn = hypercorn
        self.gauge = gauge

    async def connection(self, conn: stdlib_socket.socket, addr: Any) -> None:
        """Route one new connection; never raises (a failure ends only this connection).

        This coroutine's frame lives as long as the connection: it keeps no
        reference to the request bytes or the handshake machinery once the
        handler runs (memory per idle connection is a target).
        """
        try:
            read = await self._read_head(conn)
            if read is None:
                return
            data, end = read
            head = parse_head(data[:end]) if end > 0 else None
            if head is None or not head.wants_websocket:
                await self.hypercorn.serve_connection(trio.socket.from_stdlib_socket(conn), data)
                return
            prepared = await self._prepare(conn, addr, data, end, head)
            del read, data, head
            if prepared is None:
                return
            socket, route, params = prepared
            del prepared
            lane = self.lane
            lane.sockets.add(socket)
            lane.connections_total += 1
            gauge = self.gauge.labels(route.kind) if self.gauge is not None else None
            if gauge is not None:
                gauge.inc()
            code, reason = CLOSE_NORMAL, ""
            try:
                if lane.shutting_down:
                    code, reason = CLOSE_GOING_AWAY, "server shutting down"
                else:
                    await route.handler(socket, lane.services, **params)
            except Exception as exc:
                code, reason = _close_for(exc, route)
                if code == CLOSE_INTERNAL:
                    lane.handler_errors += 1
            except BaseException:
                # Cancelled (the shutdown grace period ran out): still say why.
                code, reason = CLOSE_GOING_AWAY, "server shutting down"
                raise
            finally:
                if gauge is not None:
                    gauge.dec()
                await socket._finish(code, reason)
        except Exception:
            log.exception("connection_failed")
        finally:
            # Whoever served it closed it, unless we were cancelled or failed first.
            if conn.fileno() != -1:
                trio.lowlevel.notify_closing(conn)
                conn.close()

    async def _read_head(self, conn: stdlib_socket.socket) -> tuple[bytes, int] | None:
        settings = self.lane.settings
        view = self.lane.recv_view
        buffer = b""
        with trio.move_on_after(settings.handshake_timeout_s):
            while True:
                try:
                    n = conn.recv_into(view)
                except BlockingIOError:
                    n = -1
                except OSError:
                    return None
                if n < 0:
                    # Awaited outside the except block, which would keep the
                    # exception (and its traceback) alive while we wait.
                    await trio.lowlevel.wait_readable(conn)
                    continue
                if n == 0:
                    return None
                start = max(0, len(buffer) - 3)
                buffer += view[:n]
                end = head_end(buffer[start:])
                if end >= 0:
                    return buffer, start + end
                if len(buffer) > settings.max_head_bytes:
                    return buffer, -1  # too long to be ours: Hypercorn answers it
        return None

    async def _prepare(
        self, conn: stdlib_socket.socket, addr: Any, data: bytes, end: int, head: RequestHead
    ) -> tuple[RealtimeSocket, RealtimeRoute, dict[str, str]] | None:
        """The socket for a WebSocket upgrade, or None once an HTTP error was answered."""
        found = match_route(head.raw_path)
        if found is None:
            await _answer(conn, 404, "not_found", f"no WebSocket endpoint at {head.path}")
            return None
        route, params = found
        handshake = H11Handshake(ConnectionType.SERVER)
        try:
            handshake.receive_data(data[:end])
            request = next((e for e in handshake.events() if isinstance(e, Request)), None)
        except RemoteProtocolError as exc:
            await _answer(conn, 400, "bad_request", f"invalid WebSocket handshake: {exc}")
            return None
        if request is None:
            await _answer(conn, 400, "bad_request", "invalid WebSocket handshake")
            return None
        fmt, subprotocol = choose_format(list(request.subprotocols), head.query)
        if fmt is None:
            await _answer(conn, 400, "invalid_input", "format must be json or msgpack")
            return None
        deflate = None
        if self.lane.settings.permessage_deflate and any(
            str(offer).split(";")[0].strip() == PerMessageDeflate.name for offer in request.extensions
        ):
            deflate = PerMessageDeflate(server_no_context_takeover=True)
        socket = RealtimeSocket(
            self.lane,
            conn,
            head,
            remote_addr=str(addr[0]) if isinstance(addr, tuple) else str(addr),
            wire_format=fmt,
            subprotocol=subprotocol,
            params=params,
            handshake=handshake,
            deflate=deflate,
            leftover=data[end:],
        )
        return socket, route, params


def _close_for(exc: Exception, route: RealtimeRoute) -> tuple[int, str]:
    """How a handler's exception ends its socket."""
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.subgroup(lambda e: not isinstance(e, (SocketClosed, BaseExceptionGroup)))
        if rest is None:
            return CLOSE_NORMAL, ""
        if len(rest.exceptions) == 1 and isinstance(rest.exceptions[0], Exception):
            return _close_for(rest.exceptions[0], route)
    if isinstance(exc, SocketClosed):
        return CLOSE_NORMAL, ""
    if isinstance(exc, BadFrame):  # not caught by the handler: end the conversation with its code
        return exc.code, exc.message
    log.exception("realtime_handler_failed", route=route.template, error=type(exc).__name__)
    return CLOSE_INTERNAL, "internal error"



async def _answer(conn: stdlib_socket.socket, status: int, error: str, message: str) -> None:
    """A small HTTP error for a connection that never became a RealtimeSocket."""
    data = json_response(status, {"error": error, "message": message})
    try:
        with trio.move_on_after(5):
            while data:
                try:
                    sent = conn.send(data)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(conn)
                    continue
                data = data[sent:]
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(stdlib_socket.SHUT_WR)
        except OSError:
            pass
        trio.lowlevel.notify_closing(conn)
        conn.close()
