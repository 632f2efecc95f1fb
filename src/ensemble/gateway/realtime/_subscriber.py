"""A real-time socket seen by an actor: frames go straight to the wire.

:meth:`SocketSubscriber.deliver` is called by the actor, synchronously, once
per receiver of a broadcast.  When nothing is queued for the socket it
writes the cached frame bytes with a non-blocking ``send`` and returns: no
task switch, no copy, no per-delivery allocation.  Only when the kernel
buffer is full does anything queue: the unsent remainder of that one frame
on the socket, and later frames in this subscriber's bounded queue, where
the actor kind's slow-consumer policy (disconnect with 4100, or coalesce)
applies exactly as for any :class:`~ensemble.actors.Subscriber`.  A writer
task, started on demand, drains the queue as the kernel accepts bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ensemble.actors import CLOSE_NORMAL, CLOSE_SLOW_CONSUMER, OutboundFrame, Subscriber

if TYPE_CHECKING:
    from ensemble.gateway.realtime._socket import RealtimeSocket

__all__ = ["SocketSubscriber"]


class SocketSubscriber(Subscriber):
    def __init__(self, socket: "RealtimeSocket", *, policy: str, capacity: int) -> None:
        super().__init__(capacity=capacity, policy=policy, wire_format=socket.wire_format)
        self._socket = socket
        self._cache = socket._lane.cache
        self._slot = 1 if self.wire_format == "json" else 2  # FrameBytesCache entry index

    def deliver(self, frame: OutboundFrame, *, catch_up: bool = False) -> None:
        if self.closed:
            return
        socket = self._socket
        if socket._open and not socket._out and not self._queue:
            # The hot path: called once per receiver of every broadcast.
            # The cache's last entry is almost always this frame; looking
            # there inline saves a call per delivery.
            entry = self._cache._last
            data = entry[self._slot] if entry[0] is frame and not socket._deflate_bits else None
            if data is None:
                data = self._cache.get(frame, self.wire_format, socket._deflate_bits)
            try:
                sent = socket._sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                socket._lost()
                return
            self.delivered += 1
            offset = frame.message.get("offset")
            if offset is not None:
                self.last_offset = offset
            if sent != len(data):
                socket._keep(data, sent)
            return
        # Backlog: queue with the policy (may coalesce, or close us with 4100).
        super().deliver(frame, catch_up=catch_up)
        if self._queue and socket._open:
            socket._want_drain()

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        if self.closed:
            return
        super().close(code, reason)
        self._socket._subscriber_closed(self)
        # ActorSystem.detach() closes with (1000, ""): that only detaches.
        # Anything else (4100 slow consumer, 4101 actor reset, an actor's
        # Close effect) ends the socket with that code.
        if code != CLOSE_NORMAL or reason:
            if code == CLOSE_SLOW_CONSUMER:
                self._socket._lane.slow_consumer_closes += 1
            self._socket._start_close(code, reason, drop_pending=code == CLOSE_SLOW_CONSUMER)
