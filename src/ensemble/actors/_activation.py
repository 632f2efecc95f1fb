"""One live actor: its mailbox, turns, output gate, subscribers and recovery.

Theory of operation
-------------------
An activation handles one message at a time (a *turn*).  A turn runs the
behavior's pure ``decide``/``apply``, updates the in-memory state at once, and
hands the turn's events to the group committer.  The actor may then go on with
its next messages while the write is in flight — but every effect of the turn
(reply, broadcast, tell, close, spawn) waits at the *output gate* until that
write and every earlier one are durable.

The gate counts writes, not offsets: each submitted write takes the next
``_submitted`` sequence number, each turn's effects are queued with the
sequence they must wait for, and ``_done`` advances as commits complete (in
order, because one committer serves the actor).

Offsets: ``applied`` is the last offset in memory, ``committed`` the last one
known durable.  Subscribers only ever see committed events, each carrying
``(epoch, offset)``.  ``attach(since)`` runs as a turn, so no event is applied
meanwhile; it feeds the missed events from the recent-frame ring (in memory)
or the log (Postgres), then registers the subscriber in the same synchronous
step that takes the last frames from the ring, so nothing falls in the seam.

Failure: a behavior exception fails only its turn (the sender gets the error);
an unexpected one also reloads the state from the store after in-flight writes
settle.  A failed *write* resets the activation: every un-released effect is
dropped, connections are closed with "reconnect with since", and the next
message activates afresh from the store.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgpack
import trio

from ensemble.actors._committer import PendingWrite
from ensemble.actors._behavior import KEEP, Address, Behavior, Close, Decision, Send, Spawn, Tell, TurnMeta
from ensemble.actors._frames import OutboundFrame
from ensemble.actors._subscriber import CLOSE_SLOW_CONSUMER, Subscriber
from ensemble.errors import EnsembleError, Unavailable
from ensemble.log import get_logger
from ensemble.persistence import actor_store
from ensemble.persistence.actor_store import ALARM_DELETE, Snapshot, StoredEvent, Write

if TYPE_CHECKING:
    from ensemble.actors._system import ActorSystem

__all__ = ["Activation", "ReplySlot", "CLOSE_ACTOR_RESET"]

log = get_logger("ensemble.actors")

# The actor lost a write and restarted from the store: reconnect with since.
CLOSE_ACTOR_RESET = 4101
_SNAPSHOT_FORMAT = 1


class ReplySlot:
    """Where an ``ask`` waits for its answer.

    Parks the asking task directly (no Event object per ask): this is on the
    hot path of every request/reply.  Only ever touched from the trio thread.
    """

    __slots__ = ("_task", "_done", "value", "error")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def set(self, value: Any) -> None:
        if not self._done:
            self.value = value
            self._finish()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self.error = error
            self._finish()

    @property
    def done(self) -> bool:
        return self._done

    def _finish(self) -> None:
        self._done = True
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def wait(self) -> Any:
        if not self._done:
            self._task = trio.lowlevel.current_task()

            def abort(_: Any) -> trio.lowlevel.Abort:
                self._task = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        else:
            await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
        return self.value


# -- mailbox messages ----------------------------------------------------------


@dataclass(slots=True)
class CommandMsg:
    command: dict[str, Any]
    principal: Any
    subscriber_id: int | None
    reply: ReplySlot | None


@dataclass(slots=True)
class AttachMsg:
    subscriber: Subscriber
    since: int | None
    reply: ReplySlot


@dataclass(slots=True)
class DetachMsg:
    subscriber_id: int


@dataclass(slots=True)
class AlarmMsg:
    due: float


@dataclass(slots=True)
class InspectMsg:
    reply: ReplySlot


@dataclass(slots=True)
class PassivateMsg:
    """Sent by the system's idle reaper; does not count as activity."""


Message = CommandMsg | AttachMsg | DetachMsg | AlarmMsg | InspectMsg | PassivateMsg


def pack_state(behavior: Behavior[Any], state: Any) -> bytes:
    return msgpack.packb({"f": _SNAPSHOT_FORMAT, "s": behavior.encode_state(state)}, use_bin_type=True)  # type: ignore[no-any-return]


def unpack_state(behavior: Behavior[Any], version: int, data: bytes) -> Any:
    envelope = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if envelope.get("f") != _SNAPSHOT_FORMAT:
        raise ValueError(f"unknown snapshot envelope format {envelope.get('f')!r}")
    return behavior.decode_state(version, envelope["s"])


def _unpack_event(stored: StoredEvent) -> dict[str, Any]:
    event: dict[str, Any] = msgpack.unpackb(stored.payload, raw=False, strict_map_key=False)
    return event


class Activation:
    def __init__(self, system: "ActorSystem", address: Address, behavior: Behavior[Any]) -> None:
        self.system = system
        self.address = address
        self.behavior = behavior
        self.mailbox_send, self.mailbox = trio.open_memory_channel[Message](system.mailbox_size)
        self.state: Any = None
        self.epoch = 0
        self.applied = 0
        self.committed = 0
        self.snapshot_offset = 0
        self.alarm_due: float | None = None
        self.subscribers: dict[int, Subscriber] = {}
        self._gate: deque[tuple[int, list[Any]]] = deque()
        # Recent committed events (offset, event), for cheap since-recovery;
        # frames are built from them only when a connection needs one.
        self._ring: deque[tuple[int, dict[str, Any]]] = deque(maxlen=system.ring_size)
        self._submitted = 0
        self._done = 0
        self._writes_settled: trio.Event | None = None  # created only when someone waits
        self.loaded = trio.Event()
        self.broken = False
        self.stopped = False
        self.turns = 0
        self.last_commit_ms = 0.0
        self.failures: deque[float] = deque(maxlen=system.max_failures)
        self.activated_at = self.last_active = time.monotonic()
        self.passivation_requested = False
        self._cancel: trio.CancelScope | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        """The activation's task; never raises into the system nursery."""
        with trio.CancelScope() as scope:
            self._cancel = scope
            try:
                await self._load(take_lease=True)
            except Exception as exc:
                log.error("activation_failed", actor=str(self.address), error=repr(exc))
                self._stop(Unavailable(f"actor {self.address} could not be activated"))
                return
            self.loaded.set()
            try:
                await self._loop()
            except Exception as exc:  # a bug in the runner itself: isolate it
                log.exception("actor_runner_crashed", actor=str(self.address), error=repr(exc))
                self._stop(Unavailable("actor stopped after an internal error"))

    async def _load(self, *, take_lease: bool) -> None:
        started = time.perf_counter()
        kind, key = self.address.kind, self.address.key
        if take_lease:
            loaded = await self.system.db.run(actor_store.activate, kind, key, self.system.node_id)
        else:
            loaded = await self.system.db.run(actor_store.load, kind, key)
        state = self.behavior.initial_state(key)
        offset = 0
        if loaded.snapshot is not None:
            state = unpack_state(self.behavior, loaded.snapshot.version, loaded.snapshot.state)
            offset = loaded.snapshot.offset
        for stored in loaded.events:
            if stored.offset != offset + 1:
                raise Unavailable(f"event log of {self.address} has a gap after offset {offset}")
            state = self.behavior.apply(state, _unpack_event(stored))
            offset = stored.offset
        self.state = state
        self.applied = self.committed = offset
        self.snapshot_offset = loaded.snapshot.offset if loaded.snapshot else 0
        self.alarm_due = loaded.alarm_due.timestamp() if loaded.alarm_due else None
        if take_lease:
            self.epoch = loaded.epoch
        self._ring.clear()
        self.system.record_activation((time.perf_counter() - started) * 1000)

    async def _loop(self) -> None:
        # No timer per message: the system's reaper notices idleness (see
        # ActorSystem._reap_idle) and posts a PassivateMsg.
        receive = self.mailbox.receive
        while True:
            try:
                msg = await receive()
            except trio.EndOfChannel:
                return  # _stop() closed the mailbox (reset or quarantine)
            if isinstance(msg, PassivateMsg):
                self.passivation_requested = False
                if self.idle_for() >= self.system.idle_timeout and await self._try_passivate():
                    return
                continue
            self.last_active = time.monotonic()
            await self._handle(msg)

    def idle_for(self) -> float:
        return time.monotonic() - self.last_active

    async def _try_passivate(self) -> bool:
        if self.subscribers or self.mailbox.statistics().current_buffer_used:
            return False
        await self._wait_writes()
        if self.applied > self.snapshot_offset:
            await self._submit(
                Write(self.address.kind, self.address.key, self.epoch, snapshot=self._snapshot()),
                upto=self.applied,
            )
            await self._wait_writes()
        # Synchronous from here: nobody can send to us once we leave the registry.
        if self.subscribers or self.mailbox.statistics().current_buffer_used or self.broken:
            return False
        self.stopped = True
        self.system.forget(self, passivated=True)
        return True

    def _stop(self, error: EnsembleError) -> None:
        """Leave the registry and fail everything still waiting on us."""
        self.stopped = True
        self.system.forget(self, passivated=False)
        self.mailbox_send.close()
        while True:
            try:
                msg = self.mailbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            reply = getattr(msg, "reply", None)
            if reply is not None:
                reply.fail(error)
        for _, effects in self._gate:
            for effect in effects:
                if isinstance(effect, tuple) and effect[0] == "reply":
                    effect[1].fail(error)
        self._gate.clear()
        for sub in list(self.subscribers.values()):
            sub.close(CLOSE_ACTOR_RESET, "actor restarted: reconnect with since")
        self.subscribers.clear()
        self.loaded.set()

    # -- turns -----------------------------------------------------------------------

    async def _handle(self, msg: Message) -> None:
        self.turns += 1
        if isinstance(msg, CommandMsg):
            meta = TurnMeta(
                now=time.time(), principal=msg.principal, subscriber_id=msg.subscriber_id, next_offset=self.applied + 1
            )
            await self._decide(lambda: self.behavior.decide(self.state, msg.command, meta), msg.reply)
        elif isinstance(msg, AttachMsg):
            try:
                await self._attach(msg.subscriber, msg.since)
            except EnsembleError as exc:
                msg.reply.fail(exc)
            else:
                msg.reply.set(None)
        elif isinstance(msg, DetachMsg):
            self.subscribers.pop(msg.subscriber_id, None)
        elif isinstance(msg, AlarmMsg):
            await self._alarm(msg)
        elif isinstance(msg, InspectMsg):
            await self._wait_writes()
            msg.reply.set(
                {
                    "state": self.behavior.encode_state(self.state),
                    "recent_events": [{**e, "offset": o} for o, e in self._ring],
                    "statistics": self.statistics(),
                }
            )

    async def _alarm(self, msg: AlarmMsg) -> None:
        if self.alarm_due is None or self.alarm_due > msg.due + 0.001:
            # Deleted or moved later since it was scheduled: stale.
            self.system.alarm_settled(self.address, self.alarm_due)
            return
        meta = TurnMeta(now=time.time(), next_offset=self.applied + 1)
        ok = await self._decide(lambda: self.behavior.on_alarm(self.state, meta), None, alarm_turn=True)
        if not ok:
            self.system.alarm_failed(self.address)

    async def _decide(self, decide: Any, reply: ReplySlot | None, *, alarm_turn: bool = False) -> bool:
        try:
            decision: Decision = decide()
            state = self.state
            for event in decision.events:
                state = self.behavior.apply(state, event)
        except EnsembleError as exc:
            self._gate_effects([("reply", reply, exc)] if reply else [])
            return False
        except Exception as exc:
            log.exception("turn_failed", actor=str(self.address), error=repr(exc))
            self._gate_effects([("reply", reply, Unavailable("the actor failed to handle this message"))] if reply else [])
            await self._recover_from_bug()
            return False
        await self._commit_turn(decision, state, reply, alarm_turn=alarm_turn)
        return True

    async def _commit_turn(
        self, decision: Decision, state: Any, reply: ReplySlot | None, *, alarm_turn: bool
    ) -> None:
        kind, key = self.address.kind, self.address.key
        first = self.applied + 1
        records = []
        committed_events: list[tuple[int, dict[str, Any]]] = []
        projections = []
        for i, event in enumerate(decision.events):
            offset = first + i
            records.append((offset, str(event["type"]), msgpack.packb(event, use_bin_type=True)))
            committed_events.append((offset, event))
            projections.extend(self.behavior.project(event, offset, self.address))
        self.state = state
        self.applied += len(records)

        alarm: datetime | str | None = None
        new_due: float | None | Any = KEEP
        if decision.alarm is not KEEP:
            alarm = decision.alarm if decision.alarm is not None else ALARM_DELETE
            new_due = decision.alarm.timestamp() if decision.alarm is not None else None
        elif alarm_turn:
            alarm, new_due = ALARM_DELETE, None
        if new_due is not KEEP:
            self.alarm_due = new_due

        write = Write(kind, key, self.epoch, events=records, alarm=alarm, projections=projections)
        if self.applied - self.snapshot_offset >= self.system.snapshot_every:
            write.snapshot = self._snapshot()
            retained = self.system.retained_events
            if self.applied > retained:
                write.prune_through = self.applied - retained
        if records or write.alarm is not None or write.snapshot is not None:
            await self._submit(write, upto=self.applied)

        effects: list[Any] = []
        if reply is not None:
            effects.append(("reply", reply, decision.reply))
        if committed_events:
            effects.append(("events", committed_events))
        for message in decision.broadcasts:
            effects.append(("broadcast", self._frame(message, self.applied)))
        effects.extend(decision.effects)
        if new_due is not KEEP:
            effects.append(("alarm", new_due))
        self._gate_effects(effects)

    def _event_frame(self, event: dict[str, Any], offset: int) -> OutboundFrame | None:
        return self._frame(self.behavior.event_frame(event), offset)

    def _frame(self, message: dict[str, Any] | None, offset: int) -> OutboundFrame | None:
        if message is None:
            return None
        full = {**message, "offset": offset, "epoch": self.epoch}
        return OutboundFrame(full, self.behavior.coalesce_key(full))

    def _snapshot(self) -> Snapshot:
        self.snapshot_offset = self.applied
        return Snapshot(self.applied, self.epoch, self.behavior.snapshot_version, pack_state(self.behavior, self.state))

    # -- writes and the output gate ------------------------------------------------

    async def _submit(self, write: Write, *, upto: int) -> None:
        # Bound what one actor may have in flight: its memory, and the
        # work lost if the store fails, stay bounded.
        while self._submitted - self._done >= self.system.max_inflight_writes and not self.broken:
            await self._wait_settled_once()
        if self.broken:
            raise Unavailable("actor was reset")
        self._submitted += 1
        pending = PendingWrite(write, self, self._submitted, upto, time.perf_counter())
        if not self.system.committer.try_submit(pending):
            await self.system.committer.submit(pending)

    def write_done(self, pending: PendingWrite, error: EnsembleError | None) -> None:
        """Called by the committer, in submission order, when a write settles."""
        if error is not None:
            self._on_write_failed(error)
            return
        self._done = pending.seq
        self.last_commit_ms = (time.perf_counter() - pending.submitted_at) * 1000
        if pending.upto > self.committed:
            self.committed = pending.upto
        if self._writes_settled is not None:
            self._writes_settled.set()
            self._writes_settled = None
        self._release()

    async def _wait_settled_once(self) -> None:
        """Until the next write completes (or the actor breaks)."""
        if self._writes_settled is None:
            self._writes_settled = trio.Event()
        await self._writes_settled.wait()

    async def _wait_writes(self) -> None:
        """Until every submitted write is durable (committed == applied)."""
        while self._done < self._submitted and not self.broken:
            await self._wait_settled_once()
        if self.broken:
            raise Unavailable("actor was reset")

    def _gate_effects(self, effects: list[Any]) -> None:
        if not effects:
            return
        self._gate.append((self._submitted, effects))
        self._release()

    def _release(self) -> None:
        while self._gate and self._gate[0][0] <= self._done:
            _, effects = self._gate.popleft()
            for effect in effects:
                self._apply_effect(effect)

    def _apply_effect(self, effect: Any) -> None:
        if isinstance(effect, tuple):
            tag = effect[0]
            if tag == "reply":
                slot, value = effect[1], effect[2]
                if isinstance(value, BaseException):
                    slot.fail(value)
                else:
                    slot.set(value)
            elif tag == "events":
                for offset, event in effect[1]:
                    self._ring.append((offset, event))
                    if self.subscribers:
                        frame = self._event_frame(event, offset)
                        if frame is not None:
                            self._broadcast(frame)
            elif tag == "broadcast":
                self._broadcast(effect[1])
            elif tag == "alarm":
                self.system.alarm_settled(self.address, effect[1])
        elif isinstance(effect, Send):
            sub = self.subscribers.get(effect.subscriber_id)
            if sub is not None:
                sub.deliver(self._frame(effect.frame, self.committed) or OutboundFrame(effect.frame))
        elif isinstance(effect, Close):
            targets = (
                list(self.subscribers.values())
                if effect.subscriber_id is None
                else [s for s in [self.subscribers.get(effect.subscriber_id)] if s]
            )
            for sub in targets:
                sub.close(effect.code, effect.reason)
                self.subscribers.pop(sub.id, None)
        elif isinstance(effect, Tell):
            self.system.tell_soon(effect.address, effect.command)
        elif isinstance(effect, Spawn):
            self.system.spawn(self.address, effect.fn, effect.name)

    def _broadcast(self, frame: OutboundFrame) -> None:
        dead = None
        for sub in self.subscribers.values():
            if sub.accepts(frame):
                sub.deliver(frame)
            if sub.closed:
                dead = dead or []
                dead.append(sub.id)
        if dead:
            for sub_id in dead:
                self.subscribers.pop(sub_id, None)

    def _on_write_failed(self, error: EnsembleError) -> None:
        if self.broken:
            return
        log.error("actor_write_failed", actor=str(self.address), error=error.message)
        self.broken = True
        if self._writes_settled is not None:
            self._writes_settled.set()
        self._stop(Unavailable(f"the actor's write failed ({error.message}); retry"))
        if self._cancel is not None:
            self._cancel.cancel()

    async def _recover_from_bug(self) -> None:
        self.failures.append(time.monotonic())
        window = self.system.failure_window_s
        if len(self.failures) == self.failures.maxlen and self.failures[-1] - self.failures[0] < window:
            log.error("actor_quarantined", actor=str(self.address), failures=len(self.failures))
            self.system.quarantine(self.address)
            await self._wait_writes_quietly()
            self._stop(Unavailable(f"actor {self.address} failed repeatedly and is stopped"))
            if self._cancel is not None:
                self._cancel.cancel()
            return
        # The reducer may have mutated what it was given: rebuild from the
        # store once every write of earlier turns is durable.
        await self._wait_writes_quietly()
        if not self.broken:
            await self._load(take_lease=False)

    async def _wait_writes_quietly(self) -> None:
        try:
            await self._wait_writes()
        except Unavailable:
            pass

    # -- subscribers and recovery ----------------------------------------------------

    async def _attach(self, sub: Subscriber, since: int | None) -> None:
        if since is not None and (since < 0 or since > self.applied):
            # An offset from the future (another deployment's log): resync.
            since = None
        if since is None:
            await self._wait_writes()
            self._register(sub, self._state_frame(resync=False))
            return
        fetched: list[tuple[int, dict[str, Any]]] = []
        cursor = since  # everything up to cursor is covered
        while True:
            ring_start = self._ring[0][0] if self._ring else self.committed + 1
            if cursor + 1 >= ring_start:
                break
            upto = ring_start - 1
            rows = await self.system.db.run(actor_store.read_events, self.address.kind, self.address.key, cursor, upto)
            if not rows or rows[0].offset != cursor + 1:
                # Older than the retained log: full state instead.
                await self._wait_writes()
                self._register(sub, self._state_frame(resync=True))
                return
            fetched.extend((stored.offset, _unpack_event(stored)) for stored in rows)
            cursor = rows[-1].offset
            if cursor < upto:
                await self._wait_writes()
                self._register(sub, self._state_frame(resync=True))
                return
        # Synchronous from here to registration: nothing can be released in between.
        missed = fetched + [(o, e) for o, e in self._ring if o > cursor]
        for offset, event in missed:
            frame = self._event_frame(event, offset)
            if frame is not None and sub.accepts(frame):
                sub.deliver(frame, catch_up=True)
        self.subscribers[sub.id] = sub

    def _state_frame(self, *, resync: bool) -> OutboundFrame:
        message = self.behavior.state_frame(self.state)
        if resync:
            message = {"type": "resync", "reason": "gap older than the retained log", "state": message}
        return OutboundFrame({**message, "offset": self.committed, "epoch": self.epoch})

    def _register(self, sub: Subscriber, first: OutboundFrame) -> None:
        sub.deliver(first, catch_up=True)
        self.subscribers[sub.id] = sub

    # -- introspection -------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        return {
            "kind": self.address.kind,
            "key": self.address.key,
            "epoch": self.epoch,
            "offset": self.committed,
            "applied_offset": self.applied,
            "mailbox_depth": self.mailbox.statistics().current_buffer_used,
            "subscribers": len(self.subscribers),
            "writes_in_flight": self._submitted - self._done,
            "turns": self.turns,
            "last_commit_ms": round(self.last_commit_ms, 3),
            "alarm_due": datetime.fromtimestamp(self.alarm_due, timezone.utc).isoformat() if self.alarm_due else None,
        }
