"""Property tests: replay equals live handling; since-recovery is exactly-once and in order."""

from __future__ import annotations

import uuid
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.actors import Address, Decision, SubscriberClosed, TurnMeta
from ensemble.actors.examples import EchoRoom
from ensemble.errors import EnsembleError
from ensemble.bridge import open_bridge
from ensemble.persistence.database import open_database


def _opener(database_url: str):  # type: ignore[no-untyped-def]
    """Hypothesis runs each example in its own trio run: open everything inside it."""
    from contextlib import asynccontextmanager

    from ensemble.actors import open_actor_system

    @asynccontextmanager
    async def _open(**options: Any):  # type: ignore[no-untyped-def]
        async with open_bridge() as bridge, open_database(bridge, database_url, min_size=1, max_size=2) as db:
            async with open_actor_system(db, [EchoRoom()], **options) as system:
                yield system

    return _open

commands = st.one_of(
    st.builds(lambda by: {"type": "increment", "by": by}, st.integers(-5, 5)),
    st.builds(
        lambda text, cid: {"type": "say", "text": text, "client_id": cid},
        st.text(min_size=1, max_size=5),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
    ),
    st.just({"type": "get"}),
    st.just({"type": "increment", "by": "bad"}),
)


@given(st.lists(commands, max_size=40))
def test_pure_replay_of_the_log_equals_live_state(cmds: list[dict[str, Any]]) -> None:
    behavior = EchoRoom()
    live = behavior.initial_state("k")
    log: list[dict[str, Any]] = []
    for cmd in cmds:
        try:
            decision: Decision = behavior.decide(live, cmd, TurnMeta(now=0.0, next_offset=len(log) + 1))
        except EnsembleError:
            continue
        for event in decision.events:
            live = behavior.apply(live, event)
            log.append(event)
    replayed = behavior.initial_state("k")
    for event in log:
        replayed = behavior.apply(replayed, event)
    assert replayed == live


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmds=st.lists(commands, min_size=1, max_size=25), snapshot_every=st.integers(1, 10))
async def test_reactivation_from_store_equals_live_state(database_url, cmds, snapshot_every) -> None:  # type: ignore[no-untyped-def]
    open_system = _opener(database_url)
    address = Address("room", uuid.uuid4().hex)
    async with open_system(snapshot_every=snapshot_every) as system:
        for cmd in cmds:
            try:
                await system.ask(address, cmd)
            except EnsembleError:
                pass
        live = (await system.inspect(address))["state"]
    async with open_system() as fresh:
        restored = (await fresh.inspect(address))["state"]
    assert restored == live


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    drops=st.lists(st.integers(0, 6), min_size=1, max_size=6),
    total=st.integers(10, 60),
    ring=st.sampled_from([2, 8, 256]),
    pauses=st.lists(st.integers(0, 3), min_size=1, max_size=8),
)
async def test_any_interleaving_of_attach_since_with_live_traffic_is_exactly_once(
    database_url, drops, total, ring, pauses
) -> None:  # type: ignore[no-untyped-def]
    open_system = _opener(database_url)
    address = Address("room", uuid.uuid4().hex)
    received: list[int] = []
    async with open_system(ring_size=ring, subscriber_buffer=10_000) as system:
        sent = trio.Event()

        async def sender() -> None:
            for i in range(total):
                await system.tell(address, {"type": "increment"})
                for _ in range(pauses[i % len(pauses)]):
                    await trio.sleep(0)
            await system.ask(address, {"type": "get"})
            sent.set()

        async def client() -> None:
            last = 0
            attempt = 0
            while True:
                sub = system.new_subscriber("room")
                await system.attach(address, sub, since=last)
                budget = drops[attempt % len(drops)] if attempt < len(drops) else None
                attempt += 1
                taken = 0
                while budget is None or taken < budget:
                    if sent.is_set() and sub.pending() == 0:
                        system.detach(address, sub)
                        return
                    with trio.move_on_after(0.05):
                        try:
                            frame = await sub.receive()
                        except SubscriberClosed:
                            break
                        if frame.message["type"] == "incremented":
                            received.append(frame.message["offset"])
                            last = frame.message["offset"]
                            taken += 1
                system.detach(address, sub)  # drop the connection mid-stream

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                nursery.start_soon(client)
    assert received == list(range(1, total + 1))
