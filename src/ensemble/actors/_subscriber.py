"""Connections attached to an actor, each with a bounded outbound buffer.

The actor hands frames to :meth:`Subscriber.deliver`, which never blocks and
never grows without limit: a slow consumer never delays the actor or the other
subscribers.  What happens on overflow is the actor kind's policy:

- ``disconnect`` (sessions): the connection is closed with
  :data:`CLOSE_SLOW_CONSUMER`; the client reconnects with ``since`` and gets
  exactly what it missed from the log.
- ``coalesce`` (dashboards): frames carrying a coalesce key (one per printer)
  replace the queued frame with the same key, so a slow dashboard gets the
  latest state of each printer instead of every intermediate one.

Catch-up frames pushed at attach time (the events a reconnecting client
missed) do not count against the live buffer: they are bounded by the
retained log instead, and the allowance shrinks as the writer drains them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

import trio

from ensemble.actors._frames import OutboundFrame, WireFormat

__all__ = ["Subscriber", "CLOSE_SLOW_CONSUMER", "CLOSE_NORMAL", "SubscriberClosed"]

# 4000-4999 is the application range.  Clients treat 4100 as "reconnect now
# with since=<last offset you saw>".
CLOSE_SLOW_CONSUMER = 4100
CLOSE_NORMAL = 1000

_ids = itertools.count(1)


class SubscriberClosed(Exception):
    """Raised by :meth:`Subscriber.receive` once the subscriber is closed and drained."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class Subscriber:
    """One connection's view of an actor's broadcasts."""

    def __init__(
        self,
        *,
        capacity: int = 256,
        policy: str = "disconnect",
        wire_format: WireFormat = "json",
        principal: Any = None,
    ) -> None:
        if policy not in ("disconnect", "coalesce"):
            raise ValueError(f"unknown slow-consumer policy {policy!r}")
        self.id = next(_ids)
        self.capacity = capacity
        self.policy = policy
        self.wire_format: WireFormat = wire_format
        self.principal = principal
        # key -> frame; keyless frames get a unique key so order is kept.
        self._queue: OrderedDict[Any, OutboundFrame] = OrderedDict()
        self._seq = itertools.count()
        self._allowance = 0
        self._wakeup = trio.Event()
        self.closed = False
        self.close_code = CLOSE_NORMAL
        self.close_reason = ""
        self.delivered = 0
        self.coalesced = 0
        self.last_offset: int | None = None

    # -- filtering (dashboards override) -----------------------------------
    def accepts(self, frame: OutboundFrame) -> bool:
        return True

    # -- the actor's side ----------------------------------------------------
    def deliver(self, frame: OutboundFrame, *, catch_up: bool = False) -> None:
        if self.closed:
            return
        if catch_up:
            self._allowance += 1
        elif len(self._queue) >= self.capacity + self._allowance:
            if self.policy == "coalesce" and frame.coalesce_key is not None:
                if self._coalesce(frame):
                    return
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect with since")
            return
        elif self.policy == "coalesce" and frame.coalesce_key is not None and self._coalesce(frame):
            return
        key = frame.coalesce_key if (self.policy == "coalesce" and frame.coalesce_key is not None) else (
            "_", next(self._seq)
        )
        self._queue[key] = frame
        if frame.offset is not None:
            self.last_offset = frame.offset
        self._wakeup.set()

    def _coalesce(self, frame: OutboundFrame) -> bool:
        """Replace the queued frame with the same key, keeping its place."""
        key = frame.coalesce_key
        if key in self._queue:
            self._queue[key] = frame
            self.coalesced += 1
            return True
        return False

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        if code == CLOSE_SLOW_CONSUMER:
            # Nothing more is worth sending: the client recovers from the log.
            self._queue.clear()
        self._wakeup.set()

    # -- the writer's side ---------------------------------------------------
    def pending(self) -> int:
        return len(self._queue)

    def receive_nowait(self) -> OutboundFrame | None:
        if not self._queue:
            return None
        _, frame = self._queue.popitem(last=False)
        if self._allowance:
            self._allowance -= 1
        self.delivered += 1
        return frame

    async def receive(self) -> OutboundFrame:
        """The next frame; raises :class:`SubscriberClosed` when closed and drained."""
        while True:
            frame = self.receive_nowait()
            if frame is not None:
                return frame
            if self.closed:
                raise SubscriberClosed(self.close_code, self.close_reason)
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    def statistics(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pending": len(self._queue),
            "capacity": self.capacity,
            "policy": self.policy,
            "delivered": self.delivered,
            "coalesced": self.coalesced,
            "closed": self.closed,
        }
