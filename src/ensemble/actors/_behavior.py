"""What a domain actor is: a pure ``decide`` and a pure ``apply``.

The runner owns the mailbox, persistence and sockets; a behavior only says,
for a state and a command, which events happen (``decide``) and how an event
changes the state (``apply``).  Both must be pure: no I/O, no clock reads (the
time of the turn arrives in :class:`TurnMeta`), no mutation of the state they
are given.  That purity is what makes replay after a crash give the same
state as live handling, and what the property tests check.

Events are plain dicts ``{"type": str, ...}`` of JSON-compatible values: the
same dict is logged (msgpack) and, with ``offset`` and ``epoch`` added,
broadcast to subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

__all__ = [
    "Address",
    "Behavior",
    "Decision",
    "TurnMeta",
    "Event",
    "Command",
    "KEEP",
    "Tell",
    "Send",
    "Close",
    "Spawn",
]

S = TypeVar("S")
Event = dict[str, Any]
Command = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Address:
    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.key}"


@dataclass(frozen=True, slots=True)
class TurnMeta:
    """Facts about the turn a pure function may use."""

    now: float  # wall clock, seconds since the epoch
    principal: Any = None  # who sent the command (the gateway's verified identity)
    subscriber_id: int | None = None  # the connection it came from, if any
    next_offset: int = 1  # the offset the turn's first event will get


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # Decision.alarm: leave the alarm as it is


@dataclass(frozen=True, slots=True)
class Tell:
    """Send a command to another actor once this turn is durable."""

    address: Address
    command: Command


@dataclass(frozen=True, slots=True)
class Send:
    """A frame to one connection of this actor (an ack, an error)."""

    subscriber_id: int
    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    """Close one connection (``subscriber_id``) or all of them (None)."""

    subscriber_id: int | None
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start background work once the turn is durable.

    ``fn(handle)`` runs in the actor system's nursery under supervision (its
    exceptions are logged, never propagated); it talks back to the actor only
    through ``handle.tell``/``handle.ask``, so its results are ordinary turns.
    """

    fn: Any
    name: str = "spawned"


@dataclass(slots=True)
class Decision:
    """The outcome of ``decide``: events to make durable and effects to release.

    Nothing here leaves the actor before the turn's events (and every earlier
    turn's events) are committed: the output gate.
    """

    events: list[Event] = field(default_factory=list)
    reply: Any = None
    broadcasts: list[dict[str, Any]] = field(default_factory=list)  # ephemeral: not logged, not replayed
    effects: list[Tell | Send | Close | Spawn] = field(default_factory=list)
    alarm: datetime | None | Any = KEEP  # a due time, None to delete, KEEP to leave it


class Behavior(Generic[S]):
    """Base class of domain actors; subclasses override the pure functions."""

    kind: ClassVar[str] = ""
    snapshot_version: ClassVar[int] = 1
    # "disconnect": a slow connection is closed and recovers with since;
    # "coalesce": a slow connection gets the latest frame per coalesce key.
    slow_consumer_policy: ClassVar[str] = "disconnect"

    def initial_state(self, key: str) -> S:
        raise NotImplementedError

    def decide(self, state: S, command: Command, meta: TurnMeta) -> Decision:
        raise NotImplementedError

    def apply(self, state: S, event: Event) -> S:
        raise NotImplementedError

    # -- snapshots ---------------------------------------------------------
    def encode_state(self, state: S) -> Any:
        """A msgpack-able form of the state (default: the state itself)."""
        return state

    def decode_state(self, version: int, data: Any) -> S:
        """Load a snapshot written by ``snapshot_version == version``.

        Override to upgrade old versions; the default accepts only the
        current one.
        """
        if version != self.snapshot_version:
            raise ValueError(f"{self.kind}: no upgrade from snapshot version {version}")
        return data  # type: ignore[no-any-return]

    # -- what subscribers see ---------------------------------------------
    def state_frame(self, state: S) -> dict[str, Any]:
        """The full-state frame a new (or resynced) connection receives first."""
        return {"type": "state", "state": self.encode_state(state)}

    def event_frame(self, event: Event) -> dict[str, Any] | None:
        """The broadcast for a committed event (None: keep it private)."""
        return event

    def coalesce_key(self, frame: dict[str, Any]) -> Any:
        """For the coalesce policy: frames with the same key replace each other."""
        return None

    def project(self, event: Event, offset: int, address: Address) -> list[tuple[str, tuple[Any, ...]]]:
        """Rows for query tables, written in the same transaction as the event."""
        return []

    def tenant_of(self, key: str, state: S) -> str | None:
        """The tenant this actor belongs to (admin views show only their own)."""
        return None

    def on_alarm(self, state: S, meta: TurnMeta) -> Decision:
        """An alarm fired.  Must be idempotent: alarms fire at least once."""
        return Decision(alarm=None)
