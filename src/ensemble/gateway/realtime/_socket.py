"""The I/O shell around one real-time WebSocket: a raw non-blocking socket.

Theory of operation
-------------------
States: CONNECTING (handshake read, handler deciding) → OPEN (after
``accept()``) → CLOSING (a close frame was sent or received) → CLOSED; or
CONNECTING → REJECTED (an HTTP error was sent).  LOST means the TCP
connection failed under us: nothing more can be sent.

Reading has one owner: the handler's ``receive()``.  It reads whatever the
kernel has into the lane's shared buffer, feeds the sans-IO parser
(:mod:`._inbound`) and answers pings itself.  While it waits for bytes it
sits in a cancel scope that a local close cancels, so a socket closed from
elsewhere (slow consumer, idle timeout, shutdown) wakes its handler at once
with :class:`SocketClosed`.

Writing never blocks and has no owner: ``send()``, pongs, pings and
subscriber deliveries call ``socket.send`` directly.  Bytes the kernel did
not take wait in ``_out`` (in order; its head may be a partly sent frame),
and a writer task is started for them; while ``_out`` is not empty,
subscriber frames wait in their subscriber's queue instead, so the actor's
slow-consumer policy bounds them.  ``_out`` itself is bounded by the same
frame count: a peer that does not read is closed with 4100.

Closing: the close frame goes behind what is already in ``_out`` (for a
slow consumer, the whole frames in ``_out`` are dropped first: the client
recovers them with ``since``).  After the handler returns, the shell waits,
at most ``close_timeout_s``, for the bytes to leave and for the peer's
close frame, then closes the TCP connection.
"""

from __future__ import annotations

import socket as stdlib_socket
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

import trio
from wsproto.events import AcceptConnection
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.handshake import H11Handshake

from ensemble.actors import OutboundFrame, Subscriber, WireFormat
from ensemble.gateway.realtime._errors import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    BadFrame,
    SocketClosed,
)
from ensemble.gateway.realtime._head import RequestHead, json_response
from ensemble.gateway.realtime._inbound import (
    InboundEvent,
    InboundParser,
    Message,
    PeerClose,
    Ping,
    ProtocolViolation,
    TooBig,
)
from ensemble.gateway.realtime._subscriber import SocketSubscriber
from ensemble.gateway.realtime._wire import OP_PING, OP_PONG, close_frame, decode_message, encode_frame, message_frame

if TYPE_CHECKING:
    from ensemble.gateway.realtime._lane import Lane

__all__ = ["RealtimeSocket"]

CONNECTING, OPEN, CLOSING, CLOSED, REJECTED, LOST = "connecting", "open", "closing", "closed", "rejected", "lost"
_IOV_MAX = 64  # buffers per sendmsg() when draining a backlog
_CONTROL_SLACK = 16  # pongs/pings/close may exceed the frame bound by this much

# Close codes a handler may use before accept(): the HTTP answer instead.
_HTTP_FOR_CLOSE = {4401: (401, "unauthenticated"), 4403: (403, "forbidden"), 1011: (500, "internal_error"),
                   1013: (503, "overloaded"), 1001: (503, "unavailable")}


class RealtimeSocket:
    """One WebSocket in the real-time lane, as a handler sees it."""

    __slots__ = (
        "path", "query", "headers", "remote_addr", "wire_format", "subprotocol", "params",
        "_lane", "_sock", "_state", "_open", "_handshake", "_deflate", "_deflate_bits", "_leftover",
        "_parser", "_events", "_out", "_writer_running", "_drained", "_subscribers", "_recv_scope",
        "_close_code", "_close_reason", "_last_seen", "_ping_sent", "_peer_closed", "__weakref__",
    )

    def __init__(
        self,
        lane: "Lane",
        sock: stdlib_socket.socket,
        head: RequestHead,
        *,
        remote_addr: str,
        wire_format: WireFormat,
        subprotocol: str | None,
        params: dict[str, str],
        handshake: H11Handshake,
        deflate: PerMessageDeflate | None,
        leftover: bytes,
    ) -> None:
        self.path = head.path
        self.query = head.query
        self.headers = head.headers
        self.remote_addr = remote_addr
        self.wire_format: WireFormat = wire_format
        self.subprotocol = subprotocol
        self.params = params
        self._lane = lane
        self._sock = sock
        self._state = CONNECTING
        self._open = False  # _state == OPEN, as a plain bool for the delivery fast path
        self._handshake: H11Handshake | None = handshake
        self._deflate = deflate
        self._deflate_bits = 0  # server window bits once permessage-deflate is agreed
        self._leftover = leftover  # frames the client sent right behind its request head
        # Created on first use: an idle, listen-only connection holds neither a
        # parser nor queues (memory per idle connection is a target).
        self._parser: InboundParser | None = None
        self._events: list[InboundEvent] = []
        self._out: deque[bytes | memoryview] | None = None
        self._writer_running = False
        self._drained: trio.Event | None = None
        self._subscribers: list[SocketSubscriber] = []
        self._recv_scope: trio.CancelScope | None = None
        self._close_code = CLOSE_ABNORMAL
        self._close_reason = ""
        self._last_seen = trio.current_time()
        self._ping_sent = False
        self._peer_closed = False

    # -- public API ----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._state not in (CONNECTING, OPEN)

    @property
    def close_code(self) -> int | None:
        return self._close_code if self.closed else None

    async def accept(self) -> None:
        """Complete the handshake (selecting the subprotocol the client asked for, if any)."""
        if self._state != CONNECTING or self._handshake is None:
            raise RuntimeError(f"accept() on a socket that is {self._state}")
        if self._lane.shutting_down:
            raise SocketClosed(CLOSE_GOING_AWAY, "server shutting down")
        extensions: list[Extension] = [self._deflate] if self._deflate is not None else []
        response = self._handshake.send(AcceptConnection(subprotocol=self.subprotocol, extensions=extensions))
        self._handshake = None  # the h11 machinery is not needed any more
        agreed = [ext for ext in extensions if ext.enabled()]
        if agreed and self._deflate is not None:
            self._deflate_bits = self._deflate.server_max_window_bits
        else:
            self._deflate = None
        self._state, self._open = OPEN, True
        self._last_seen = trio.current_time()
        self._write(response)
        if self._leftover:
            self._events += self._parse(self._leftover)
            self._leftover = b""
        if any(sub.pending() for sub in self._subscribers):
            self._want_drain()
        await trio.lowlevel.checkpoint()

    async def reject(self, status: int, error: str, message: str) -> None:
        """Refuse the upgrade with an HTTP error ``{"error", "message"}`` (before accept only)."""
        if self._state != CONNECTING:
            raise RuntimeError(f"reject() on a socket that is {self._state}")
        self._handshake = None
        self._state = REJECTED
        self._close_code, self._close_reason = status, message
        self._write(json_response(status, {"error": error, "message": message}))
        await trio.lowlevel.checkpoint()

    async def receive(self) -> dict[str, Any]:
        """The next message as a dict.

        Raises :class:`BadFrame` for one unusable message (the socket stays
        open) and :class:`SocketClosed` once the conversation is over.
        Only one task may receive at a time.
        """
        while True:
            if self._state != OPEN:
                # Closed here (slow consumer, idle, shutdown) or by the peer:
                # whatever else it sent is no longer answered.
                raise SocketClosed(self._close_code, self._close_reason)
            if self._events:
                await trio.lowlevel.checkpoint()
            else:
                # Read until the parser has something.  Inlined (no helper
                # coroutine): every frame on this await stack is memory that
                # an idle connection holds.
                sock, view = self._sock, self._lane.recv_view
                waited = False
                while not self._events:
                    try:
                        n = sock.recv_into(view)
                    except BlockingIOError:
                        n = -1
                    except OSError:
                        n = 0
                    if n < 0:
                        # Outside the except block, or the exception and its
                        # traceback would stay alive as long as we wait.
                        with trio.CancelScope() as scope:
                            self._recv_scope = scope
                            try:
                                await trio.lowlevel.wait_readable(sock)
                            finally:
                                self._recv_scope = None
                        waited = True
                        if self._state != OPEN:
                            raise SocketClosed(self._close_code, self._close_reason)
                        continue
                    if n == 0:
                        self._lost()
                        raise SocketClosed(CLOSE_ABNORMAL, "connection lost without a close frame")
                    self._last_seen = trio.current_time()
                    self._ping_sent = False
                    self._events = self._parse(bytes(view[:n]))
                if not waited:
                    await trio.lowlevel.checkpoint()
            event = self._events.pop(0)
            if isinstance(event, Message):
                try:
                    return decode_message(event.payload)
                except BadFrame:
                    self._lane.bad_frames += 1
                    raise
            if isinstance(event, Ping):
                self._write(encode_frame(OP_PONG, event.payload), control=True)
            elif isinstance(event, TooBig):
                self._lane.bad_frames += 1
                raise BadFrame(CLOSE_TOO_BIG, f"message larger than {event.limit} bytes")
            elif isinstance(event, PeerClose):
                self._on_peer_close(event.code, event.reason)
                raise SocketClosed(self._close_code, self._close_reason)
            elif isinstance(event, ProtocolViolation):
                self._start_close(event.code, event.reason)
                raise SocketClosed(self._close_code, self._close_reason)
            # Pong: liveness was recorded when its bytes arrived.

    def send(self, message: dict[str, Any] | OutboundFrame) -> None:
        """Queue one message for the peer, in this socket's format; never blocks."""
        if self._state != OPEN:
            if self._state == CONNECTING:
                raise RuntimeError("send() before accept()")
            raise SocketClosed(self._close_code, self._close_reason)
        if isinstance(message, OutboundFrame):
            data = self._lane.cache.get(message, self.wire_format, self._deflate_bits)
        else:
            data = message_frame(message, self.wire_format, self._deflate_bits)
        self._write(data)

    def subscriber(self, *, policy: str = "disconnect", capacity: int | None = None) -> Subscriber:
        """This socket as an actor subscriber, for ``services.actors.attach(address, sub)``."""
        sub = SocketSubscriber(self, policy=policy, capacity=capacity or self._lane.buffer_frames)
        if self.closed:
            Subscriber.close(sub)
        else:
            self._subscribers.append(sub)
        return sub

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake (before accept: answer with the matching HTTP error)."""
        if self._state == CONNECTING:
            status, error = _HTTP_FOR_CLOSE.get(code, (400, "bad_request"))
            await self.reject(status, error, reason or error.replace("_", " "))
            return
        self._start_close(code, reason)
        await trio.lowlevel.checkpoint()

    def statistics(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "state": self._state,
            "format": self.wire_format,
            "queued_bytes": sum(len(chunk) for chunk in self._out or ()),
            "queued_frames": len(self._out or ()) + sum(sub.pending() for sub in self._subscribers),
            "writer_running": self._writer_running,
            "subscribers": len(self._subscribers),
        }

    def __repr__(self) -> str:
        return f"<RealtimeSocket {self.path} {self._state} {self.wire_format}>"

    # -- reading ---------------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[InboundEvent]:
        parser = self._parser
        if parser is None:
            extensions: list[Extension] = [self._deflate] if self._deflate is not None else []
            parser = self._parser = InboundParser(self._lane.max_message_bytes, extensions)
        return parser.receive(data)

    def _on_peer_close(self, code: int, reason: str) -> None:
        self._peer_closed = True
        if self._state == OPEN:
            # Echo the peer's code (RFC 6455 5.5.1); 1005 "no code" is answered with 1000.
            self._start_close(code if code != 1005 else CLOSE_NORMAL, reason)
        self._close_code, self._close_reason = code, reason

    # -- writing ---------------------------------------------------------------------------
    def _write(self, data: bytes, *, control: bool = False) -> None:
        out = self._out
        if out:  # None or empty: nothing waiting
            out.append(data)
            if len(out) > self._lane.buffer_frames + (_CONTROL_SLACK if control else 0) and self._state == OPEN:
                self._lane.slow_consumer_closes += 1
                self._start_close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect with since", drop_pending=True)
            return
        if self._state in (LOST, CLOSED):
            return
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._lost()
            return
        if sent != len(data):
            self._keep(data, sent)

    def _keep(self, data: bytes, sent: int) -> None:
        """The kernel took only ``sent`` bytes of ``data`` (with ``_out`` empty)."""
        if self._out is None:
            self._out = deque()
        self._out.append(memoryview(data)[sent:] if sent else data)
        self._want_drain()

    def _want_drain(self) -> None:
        if not self._writer_running and self._state in (OPEN, CLOSING, REJECTED):
            self._writer_running = True
            if not self._lane.spawn_writer(self):
                self._writer_running = False
                self._lost()

    async def _drain(self) -> None:
        """The writer task: runs only while there is a backlog."""
        sock = self._sock
        try:
            while True:
                if self._out:
                    await trio.lowlevel.wait_writable(sock)
                    if not self._flush():
                        return
                elif self._state != OPEN or not self._pump():
                    return
        except (trio.ClosedResourceError, OSError):
            self._lost()
        finally:
            self._writer_running = False
            if not self._out:
                self._out = None  # the backlog is over: give the queue back
            if self._drained is not None:
                self._drained.set()

    def _flush(self) -> bool:
        """Write as much of ``_out`` as the kernel takes; False if the connection broke."""
        out, sock = self._out, self._sock
        while out:
            try:
                if len(out) == 1:
                    sent = sock.send(out[0])
                else:
                    sent = sock.sendmsg(list(islice(out, _IOV_MAX)))
            except BlockingIOError:
                return True
            except OSError:
                self._lost()
                return False
            while sent:
                size = len(out[0])
                if sent < size:
                    out[0] = memoryview(out[0])[sent:]
                    return True  # the kernel is full again
                out.popleft()
                sent -= size
        return True

    def _pump(self) -> bool:
        """Move queued subscriber frames to the wire until the kernel is full; True if any moved."""
        moved = False
        cache, bits = self._lane.cache, self._deflate_bits
        for sub in self._subscribers:
            while not self._out:
                frame = sub.receive_nowait()
                if frame is None:
                    break
                moved = True
                self._write(cache.get(frame, sub.wire_format, bits))
            if self._out:
                break
        return moved

    # -- closing -----------------------------------------------------------------------------
    def _start_close(self, code: int, reason: str, *, drop_pending: bool = False) -> None:
        """Send a close frame (behind what is queued) and wake the handler."""
        if self._state != OPEN:
            return
        self._state, self._open = CLOSING, False
        self._close_code, self._close_reason = code, reason
        if drop_pending and self._out and len(self._out) > 1:
            head = self._out[0]
            self._out.clear()
            # A partly sent frame must be finished, or the stream is corrupt.
            if isinstance(head, memoryview):
                self._out.append(head)
        self._write(close_frame(code, reason), control=True)
        self._close_subscribers()
        self._wake_receiver()

    def _going_away(self) -> None:
        self._start_close(CLOSE_GOING_AWAY, "server shutting down")

    def _lost(self) -> None:
        if self._state in (LOST, CLOSED):
            return
        if self._state in (CONNECTING, OPEN):
            self._close_code, self._close_reason = CLOSE_ABNORMAL, "connection lost"
        self._state, self._open = LOST, False
        self._out = None
        self._close_subscribers()
        self._wake_receiver()

    def _close_subscribers(self) -> None:
        for sub in self._subscribers:
            Subscriber.close(sub)  # the base close: only marks it, the actor drops it
        self._subscribers.clear()

    def _subscriber_closed(self, sub: SocketSubscriber) -> None:
        try:
            self._subscribers.remove(sub)
        except ValueError:
            pass

    def _wake_receiver(self) -> None:
        if self._recv_scope is not None:
            self._recv_scope.cancel()

    def _keepalive(self, now: float, ping_interval: float, idle_timeout: float) -> None:
        if self._state != OPEN:
            return
        silent = now - self._last_seen
        if silent >= idle_timeout:
            self._lane.idle_closes += 1
            self._start_close(CLOSE_GOING_AWAY, "idle timeout")
        elif silent >= ping_interval and not self._ping_sent:
            self._ping_sent = True
            self._write(encode_frame(OP_PING, b"keepalive"), control=True)

    async def _finish(self, code: int, reason: str) -> None:
        """After the handler: close properly (bounded in time), then release the socket."""
        try:
            if self._state == CONNECTING:
                status, error = _HTTP_FOR_CLOSE.get(code, (500, "internal_error"))
                await self.reject(status, error, reason or "the handler did not accept the connection")
            self._start_close(code, reason)
            with trio.move_on_after(self._lane.settings.close_timeout_s):
                await self._wait_drained()
                if self._state == CLOSING and not self._peer_closed:
                    await self._await_peer_close()
        finally:
            self._release()

    async def _wait_drained(self) -> None:
        while self._writer_running:
            self._drained = trio.Event()
            await self._drained.wait()
        await trio.lowlevel.checkpoint()

    async def _await_peer_close(self) -> None:
        """Read (and drop) until the peer's close frame or EOF."""
        sock, view = self._sock, self._lane.recv_view
        if any(type(event) in (PeerClose, ProtocolViolation) for event in self._events):
            self._peer_closed = True
            return
        while True:
            try:
                n = sock.recv_into(view)
            except BlockingIOError:
                n = -1
            except OSError:
                return
            if n < 0:
                await trio.lowlevel.wait_readable(sock)
                continue
            if n == 0:
                return
            if any(type(event) in (PeerClose, ProtocolViolation) for event in self._parse(bytes(view[:n]))):
                self._peer_closed = True
                return

    def _release(self) -> None:
        if self._state in (CONNECTING, OPEN, CLOSING):
            self._close_code = self._close_code if self._state == CLOSING else CLOSE_ABNORMAL
        if self._state != REJECTED:
            self._state = CLOSED
        self._open = False
        self._close_subscribers()
        self._out = None
        self._lane.sockets.discard(self)
        try:
            # The server closes the TCP connection first (RFC 6455 7.1.1).
            self._sock.shutdown(stdlib_socket.SHUT_RDWR)
        except OSError:
            pass
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()
