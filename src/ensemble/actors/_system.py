"""The actor system: addressing, activation, asks and tells, alarms.

``async with open_actor_system(db, behaviors) as system`` owns a nursery in
which every activation, the group committer and the alarm scheduler run.
Each activation supervises itself (see ``Activation.run``), so one actor's bug
never cancels another or the system.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import trio

from ensemble.actors._activation import (
    Activation,
    AlarmMsg,
    AttachMsg,
    CommandMsg,
    DetachMsg,
    InspectMsg,
    Message,
    PassivateMsg,
    ReplySlot,
)
from ensemble.actors._behavior import Address, Behavior
from ensemble.actors._committer import GroupCommitter
from ensemble.actors._frames import WireFormat
from ensemble.actors._subscriber import Subscriber
from ensemble.errors import EnsembleError, NotFound, Overloaded, Unavailable
from ensemble.log import get_logger
from ensemble.persistence import actor_store
from ensemble.persistence.database import Database

__all__ = ["ActorSystem", "ActorHandle", "open_actor_system"]

log = get_logger("ensemble.actors")


class ActorHandle:
    """What spawned background work may do: talk to its actor like anyone else."""

    def __init__(self, system: "ActorSystem", address: Address) -> None:
        self.system = system
        self.address = address

    async def tell(self, command: dict[str, Any]) -> None:
        await self.system.tell(self.address, command)

    async def ask(self, command: dict[str, Any], timeout: float = 10.0) -> Any:
        return await self.system.ask(self.address, command, timeout=timeout)


class ActorSystem:
    def __init__(
        self,
        db: Database,
        behaviors: Iterable[Behavior[Any]],
        nursery: trio.Nursery,
        *,
        mailbox_size: int = 256,
        idle_timeout: float = 300.0,
        snapshot_every: int = 200,
        retained_events: int = 10_000,
        subscriber_buffer: int = 256,
        ring_size: int = 256,
        max_inflight_writes: int = 512,
        max_failures: int = 5,
        failure_window_s: float = 60.0,
        quarantine_s: float = 30.0,
        alarm_poll_s: float = 1.0,
        node_id: str | None = None,
    ) -> None:
        self.db = db
        self.behaviors = {b.kind: b for b in behaviors}
        self._nursery = nursery
        self.mailbox_size = mailbox_size
        self.idle_timeout = idle_timeout
        self.snapshot_every = snapshot_every
        self.retained_events = retained_events
        self.subscriber_buffer = subscriber_buffer
        self.ring_size = ring_size
        self.max_inflight_writes = max_inflight_writes
        self.max_failures = max_failures
        self.failure_window_s = failure_window_s
        self.quarantine_s = quarantine_s
        self.alarm_poll_s = alarm_poll_s
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}"
        self.committer = GroupCommitter(db)
        self._registry: dict[Address, Activation] = {}
        self._quarantined: dict[Address, float] = {}
        self.activations_total = 0
        self.passivations_total = 0
        self.resets_total = 0
        self._activation_ms: list[float] = []
        # Alarm scheduling: address -> due (seconds); heap may hold stale entries.
        self._alarm_due: dict[Address, float] = {}
        self._alarm_heap: list[tuple[float, str, str]] = []
        self._alarm_inflight: set[Address] = set()
        self._alarm_attempts: dict[Address, int] = {}
        self._alarm_wakeup = trio.Event()
        self.alarms_fired = 0
        self._ask_deadlines: list[tuple[float, int, ReplySlot, Address, float]] = []
        self._ask_seq = itertools.count()

    # -- addressing --------------------------------------------------------------

    def _behavior(self, kind: str) -> Behavior[Any]:
        try:
            return self.behaviors[kind]
        except KeyError:
            raise NotFound(f"no actor kind {kind!r}") from None

    def _activation(self, address: Address) -> Activation:
        live = self._registry.get(address)
        if live is not None and not live.stopped:
            return live
        until = self._quarantined.get(address)
        if until is not None:
            if time.monotonic() < until:
                raise Unavailable(f"actor {address} is stopped after repeated failures; retry later")
            del self._quarantined[address]
        activation = Activation(self, address, self._behavior(address.kind))
        self._registry[address] = activation
        self.activations_total += 1
        self._nursery.start_soon(activation.run, name=f"actor:{address}")
        return activation

    def forget(self, activation: Activation, *, passivated: bool) -> None:
        if self._registry.get(activation.address) is activation:
            del self._registry[activation.address]
        if passivated:
            self.passivations_total += 1
        else:
            self.resets_total += 1

    def quarantine(self, address: Address) -> None:
        self._quarantined[address] = time.monotonic() + self.quarantine_s

    def record_activation(self, ms: float) -> None:
        self._activation_ms.append(ms)
        if len(self._activation_ms) > 1000:
            del self._activation_ms[:500]

    def _post(self, address: Address, msg: Message) -> None:
        activation = self._activation(address)
        try:
            activation.mailbox_send.send_nowait(msg)
        except trio.WouldBlock:
            raise Overloaded(f"actor {address} is busy; retry") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise Unavailable(f"actor {address} is restarting; retry") from None

    # -- talking to actors ---------------------------------------------------------

    def tell_nowait(
        self, address: Address, command: dict[str, Any], *, principal: Any = None, subscriber_id: int | None = None
    ) -> None:
        """Fire and forget; ``Overloaded`` at once when the mailbox is full."""
        self._post(address, CommandMsg(command, principal, subscriber_id, None))

    async def tell(
        self,
        address: Address,
        command: dict[str, Any],
        *,
        principal: Any = None,
        subscriber_id: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Fire and forget, waiting (at most ``timeout``) for mailbox space."""
        msg = CommandMsg(command, principal, subscriber_id, None)
        try:
            self._post(address, msg)
            return
        except Overloaded:
            pass
        with trio.move_on_after(timeout):
            try:
                await self._activation(address).mailbox_send.send(msg)
                return
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise Unavailable(f"actor {address} is restarting; retry") from None
        raise Overloaded(f"actor {address} is busy; retry")

    def tell_soon(self, address: Address, command: dict[str, Any]) -> None:
        """Actor-to-actor tell: retried for a while when the target is busy."""
        try:
            self.tell_nowait(address, command)
        except (Overloaded, Unavailable):
            self._nursery.start_soon(self._tell_retrying, address, command)

    async def _tell_retrying(self, address: Address, command: dict[str, Any]) -> None:
        delay = 0.01
        for _ in range(12):  # bounded: about 40 s in all
            await trio.sleep(delay)
            try:
                self.tell_nowait(address, command)
                return
            except (Overloaded, Unavailable):
                delay = min(delay * 2, 10.0)
        log.error("tell_dropped", actor=str(address), type=command.get("type"))

    async def ask(
        self,
        address: Address,
        command: dict[str, Any],
        *,
        principal: Any = None,
        subscriber_id: int | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Request/reply; the reply is released only once the turn is durable."""
        slot = ReplySlot()
        self._post(address, CommandMsg(command, principal, subscriber_id, slot))
        return await self._wait(address, slot, timeout)

    async def _wait(self, address: Address, slot: ReplySlot, timeout: float) -> Any:
        # One heap and one timer task for every pending ask, rather than a
        # cancel scope per ask: asks are the hot path (see bench/actors.py).
        heapq.heappush(self._ask_deadlines, (time.monotonic() + timeout, next(self._ask_seq), slot, address, timeout))
        return await slot.wait()

    async def _expire_asks(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        heap = self._ask_deadlines
        last_compaction = time.monotonic()
        while True:
            await trio.sleep(0.05)
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, _, slot, address, timeout = heapq.heappop(heap)
                slot.fail(Unavailable(f"actor {address} did not answer within {timeout:g} s"))
            # Answered asks stay in the heap until their deadline; once a
            # second, drop them so memory follows the asks still waiting.
            if len(heap) > 1024 and now - last_compaction >= 1.0:
                heap[:] = [entry for entry in heap if not entry[2].done]
                heapq.heapify(heap)
                last_compaction = now

    def new_subscriber(self, kind: str, *, wire_format: WireFormat = "json", principal: Any = None) -> Subscriber:
        behavior = self._behavior(kind)
        return Subscriber(
            capacity=self.subscriber_buffer,
            policy=behavior.slow_consumer_policy,
            wire_format=wire_format,
            principal=principal,
        )

    async def attach(self, address: Address, subscriber: Subscriber, *, since: int | None = None, timeout: float = 10.0) -> None:
        """Connect a subscriber: first the state (or what it missed since ``since``), then live frames."""
        slot = ReplySlot()
        self._post(address, AttachMsg(subscriber, since, slot))
        await self._wait(address, slot, timeout)

    def detach(self, address: Address, subscriber: Subscriber) -> None:
        subscriber.close()
        live = self._registry.get(address)
        if live is None or live.stopped:
            return
        try:
            live.mailbox_send.send_nowait(DetachMsg(subscriber.id))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            # The closed subscriber is dropped at the next broadcast anyway.
            pass

    async def inspect(self, address: Address, timeout: float = 10.0) -> dict[str, Any]:
        slot = ReplySlot()
        self._post(address, InspectMsg(slot))
        result: dict[str, Any] = await self._wait(address, slot, timeout)
        return result

    def spawn(self, address: Address, fn: Callable[[ActorHandle], Awaitable[None]], name: str) -> None:
        self._nursery.start_soon(self._supervised, address, fn, name, name=f"spawn:{address}:{name}")

    async def _supervised(self, address: Address, fn: Callable[[ActorHandle], Awaitable[None]], name: str) -> None:
        try:
            await fn(ActorHandle(self, address))
        except EnsembleError as exc:
            log.warning("spawned_task_failed", actor=str(address), task=name, error=exc.message)
        except Exception as exc:
            log.exception("spawned_task_crashed", actor=str(address), task=name, error=repr(exc))

    def is_active(self, address: Address) -> bool:
        live = self._registry.get(address)
        return live is not None and not live.stopped

    def live(self, kind: str | None = None) -> list[Activation]:
        return [a for a in self._registry.values() if kind is None or a.address.kind == kind]

    def tenant_of(self, kind: str, key: str) -> str | None:
        """The tenant of a live actor (None when not live or not tenant-owned)."""
        activation = self._registry.get(Address(kind, key))
        if activation is None or activation.stopped or not activation.loaded.is_set():
            return None
        return activation.behavior.tenant_of(key, activation.state)

    def live_for_tenant(self, tenant_id: str) -> list[dict[str, Any]]:
        """``statistics()`` of every live actor of one tenant, by kind and key."""
        out = []
        for activation in list(self._registry.values()):
            if activation.stopped or not activation.loaded.is_set():
                continue
            if activation.behavior.tenant_of(activation.address.key, activation.state) == tenant_id:
                out.append(activation.statistics())
        out.sort(key=lambda s: (s["kind"], s["key"]))
        return out

    # -- alarms ----------------------------------------------------------------------

    def alarm_settled(self, address: Address, due: float | None) -> None:
        """Called after an actor's alarm change is durable (or found stale)."""
        self._alarm_inflight.discard(address)
        self._alarm_attempts.pop(address, None)
        if due is None:
            self._alarm_due.pop(address, None)
            return
        self._schedule_alarm(address, due)

    def alarm_failed(self, address: Address) -> None:
        self._alarm_inflight.discard(address)
        attempts = self._alarm_attempts.get(address, 0) + 1
        self._alarm_attempts[address] = attempts
        # Retried with backoff, like Durable Objects (which gives up after six).
        # Giving up here only stops this process's retries; the row stays and
        # the next start tries again.
        if attempts <= 6:
            self._schedule_alarm(address, time.time() + min(2**attempts, 60))
        else:
            log.error("alarm_given_up", actor=str(address), attempts=attempts)
            self._alarm_due.pop(address, None)

    def _schedule_alarm(self, address: Address, due: float) -> None:
        self._alarm_due[address] = due
        heapq.heappush(self._alarm_heap, (due, address.kind, address.key))
        self._alarm_wakeup.set()

    async def _alarm_loop(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_poll = 0.0
        while True:
            now = time.time()
            if now >= next_poll:
                horizon = datetime.fromtimestamp(now + self.alarm_poll_s * 2, timezone.utc)
                try:
                    rows = await self.db.run(actor_store.due_alarms, horizon, 1000)
                except EnsembleError as exc:
                    log.warning("alarm_poll_failed", error=exc.message)
                    rows = []
                for kind, key, due_at in rows:
                    address = Address(kind, key)
                    if kind in self.behaviors and address not in self._alarm_inflight:
                        due = due_at.timestamp()
                        if self._alarm_due.get(address) != due:
                            self._schedule_alarm(address, due)
                next_poll = now + self.alarm_poll_s
            now = time.time()
            while self._alarm_heap and self._alarm_heap[0][0] <= now:
                due, kind, key = heapq.heappop(self._alarm_heap)
                address = Address(kind, key)
                if self._alarm_due.get(address) != due or address in self._alarm_inflight:
                    continue
                try:
                    self._post(address, AlarmMsg(due))
                except EnsembleError:
                    self._schedule_alarm(address, now + 1.0)
                    continue
                self._alarm_inflight.add(address)
                self.alarms_fired += 1
            wake_at = next_poll
            if self._alarm_heap:
                wake_at = min(wake_at, self._alarm_heap[0][0])
            self._alarm_wakeup = trio.Event()
            with trio.move_on_after(max(0.0, wake_at - time.time())):
                await self._alarm_wakeup.wait()

    # -- passivation -------------------------------------------------------------------

    async def _reap_idle(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ask idle activations to passivate; one timer for all of them."""
        task_status.started()
        period = max(0.05, min(self.idle_timeout / 4, 30.0))
        while True:
            await trio.sleep(period)
            for activation in list(self._registry.values()):
                if (
                    not activation.passivation_requested
                    and not activation.subscribers
                    and activation.loaded.is_set()
                    and activation.idle_for() >= self.idle_timeout
                ):
                    try:
                        activation.mailbox_send.send_nowait(PassivateMsg())
                    except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                        continue
                    activation.passivation_requested = True

    # -- introspection ---------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for activation in self._registry.values():
            by_kind[activation.address.kind] = by_kind.get(activation.address.kind, 0) + 1
        samples = sorted(self._activation_ms)

        def pct(p: float) -> float | None:
            if not samples:
                return None
            return round(samples[min(len(samples) - 1, math.ceil(p * len(samples)) - 1)], 3)

        return {
            "live": len(self._registry),
            "live_by_kind": by_kind,
            "activations_total": self.activations_total,
            "passivations_total": self.passivations_total,
            "resets_total": self.resets_total,
            "quarantined": len(self._quarantined),
            "activation_ms_p50": pct(0.5),
            "activation_ms_p99": pct(0.99),
            "alarms_scheduled": len(self._alarm_due),
            "alarms_fired": self.alarms_fired,
            "commit": self.committer.statistics(),
        }


@asynccontextmanager
async def open_actor_system(
    db: Database, behaviors: Iterable[Behavior[Any]], **options: Any
) -> AsyncIterator[ActorSystem]:
    committer: GroupCommitter | None = None
    try:
        async with trio.open_nursery() as nursery:
            system = ActorSystem(db, behaviors, nursery, **options)
            committer = system.committer
            await nursery.start(system.committer.run)
            await nursery.start(system._alarm_loop)
            await nursery.start(system._reap_idle)
            await nursery.start(system._expire_asks)
            try:
                yield system
            finally:
                # Let in-flight writes land (their effects are what clients were
                # promised), bounded, then stop everything.
                with trio.move_on_after(5), trio.CancelScope(shield=True):
                    for activation in list(system._registry.values()):
                        await activation._wait_writes_quietly()
                nursery.cancel_scope.cancel()
    finally:
        if committer is not None:
            await committer.aclose()
