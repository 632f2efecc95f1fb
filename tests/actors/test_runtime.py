"""The actor contract: activation, turns, output gate, isolation, passivation, snapshots."""

from __future__ import annotations

import msgpack
import pytest
import trio

from ensemble.actors import CLOSE_ACTOR_RESET, ActorSystem, Address, SubscriberClosed
from ensemble.errors import InvalidInput, Overloaded, Unavailable


async def _event_offsets(db, address: Address) -> list[int]:  # type: ignore[no-untyped-def]
    rows = await db.fetch(
        'SELECT "offset" FROM actor_events WHERE kind = $1 AND key = $2 ORDER BY "offset"', address.kind, address.key
    )
    return [r[0] for r in rows]


async def test_ask_returns_after_the_event_is_durable(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    assert await system.ask(address, {"type": "increment", "by": 3}) == 3
    # The reply was released, so the event must already be in Postgres.
    assert await _event_offsets(db, address) == [1]
    assert await system.ask(address, {"type": "increment"}) == 4
    assert await _event_offsets(db, address) == [1, 2]


async def test_concurrent_first_messages_make_one_activation(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    before = system.activations_total
    results: list[int] = []
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(lambda: _ask_append(system, address, results))
    assert sorted(results) == list(range(1, 21))
    assert system.activations_total == before + 1
    assert await db.fetchval("SELECT epoch FROM actor_leases WHERE kind = 'room' AND key = $1", address.key) == 1


async def _ask_append(system: ActorSystem, address: Address, out: list[int]) -> None:
    out.append(await system.ask(address, {"type": "increment"}))


async def test_full_mailbox_answers_overloaded_at_once(open_system, room) -> None:  # type: ignore[no-untyped-def]
    async with open_system(mailbox_size=2) as system:
        address = room()
        system.tell_nowait(address, {"type": "increment"})
        system.tell_nowait(address, {"type": "increment"})
        with pytest.raises(Overloaded):
            system.tell_nowait(address, {"type": "increment"})
        # Nothing was lost of what was accepted.
        with trio.fail_after(5):
            while True:
                try:
                    got = await system.ask(address, {"type": "get"})
                    break
                except Overloaded:
                    await trio.sleep(0.01)
        assert got == {"count": 2, "messages": 0}


async def test_handler_exception_fails_only_that_turn(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    a, b = room(), room()
    await system.ask(a, {"type": "increment", "by": 5})
    await system.ask(b, {"type": "increment", "by": 7})
    with pytest.raises(Unavailable, match="failed to handle"):
        await system.ask(a, {"type": "bug"})
    with pytest.raises(Unavailable):
        await system.ask(a, {"type": "bug_in_apply"})
    with pytest.raises(InvalidInput):
        await system.ask(a, {"type": "increment", "by": "x"})
    assert await system.ask(a, {"type": "get"}) == {"count": 5, "messages": 0}
    assert await system.ask(b, {"type": "increment"}) == 8
    # The poison event was never stored.
    assert await _event_offsets(db, a) == [1]


async def test_repeated_failures_stop_the_actor(open_system, room) -> None:  # type: ignore[no-untyped-def]
    async with open_system(max_failures=3, quarantine_s=60) as system:
        address = room()
        await system.ask(address, {"type": "increment"})
        for _ in range(3):
            with pytest.raises(Unavailable):
                await system.ask(address, {"type": "bug"})
        await trio.testing.wait_all_tasks_blocked()
        assert not system.is_active(address)
        with pytest.raises(Unavailable, match="repeated failures"):
            await system.ask(address, {"type": "get"})
        assert system.statistics()["quarantined"] == 1
        # Other actors are unaffected.
        assert await system.ask(room(), {"type": "increment"}) == 1


async def test_passivation_snapshots_and_reactivation_restores(open_system, db, room) -> None:  # type: ignore[no-untyped-def]
    async with open_system(idle_timeout=0.2) as system:
        address = room()
        for _ in range(5):
            await system.ask(address, {"type": "say", "text": "hi"})
        await system.ask(address, {"type": "increment", "by": 2})
        with trio.fail_after(5):
            while system.is_active(address):
                await trio.sleep(0.05)
        assert system.passivations_total >= 1
        snap = await db.fetchrow("SELECT \"offset\", version FROM actor_snapshots WHERE kind='room' AND key=$1", address.key)
        assert snap["offset"] == 6 and snap["version"] == 2
        activations = system.activations_total
        assert await system.ask(address, {"type": "get"}) == {"count": 2, "messages": 5}
        assert system.activations_total == activations + 1


async def test_snapshot_every_n_and_old_snapshot_version_loads(open_system, db, room) -> None:  # type: ignore[no-untyped-def]
    async with open_system(snapshot_every=3) as system:
        address = room()
        for _ in range(7):
            await system.ask(address, {"type": "increment"})
        snap = await db.fetchval("SELECT \"offset\" FROM actor_snapshots WHERE kind='room' AND key=$1", address.key)
        assert snap == 6
    # A version-1 snapshot written by an older release.
    old = room()
    state = msgpack.packb({"f": 1, "s": {"count": 9, "said": 4, "seen": {}}})
    await db.execute(
        "INSERT INTO actor_snapshots (kind, key, \"offset\", epoch, version, state) VALUES ('room', $1, 4, 1, 1, $2)",
        old.key,
        state,
    )
    async with open_system() as system:
        assert await system.ask(old, {"type": "get"}) == {"count": 9, "messages": 4}
        assert await system.ask(old, {"type": "increment"}) == 10
        assert await _event_offsets(db, old) == [5]


async def test_idempotent_send_returns_original_offset(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    first = await system.ask(address, {"type": "say", "text": "a", "client_id": "c1"})
    await system.ask(address, {"type": "say", "text": "b", "client_id": "c2"})
    again = await system.ask(address, {"type": "say", "text": "a", "client_id": "c1"})
    assert first == {"offset": 1, "duplicate": False}
    assert again == {"offset": 1, "duplicate": True}
    assert await _event_offsets(db, address) == [1, 2]


async def test_stale_writer_is_fenced_and_actor_resets(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    await system.ask(address, {"type": "increment"})
    sub = system.new_subscriber("room")
    await system.attach(address, sub)
    # Another writer (a newer activation elsewhere) took offset 2.
    await db.execute(
        "INSERT INTO actor_events (kind, key, \"offset\", epoch, type, payload) VALUES ('room', $1, 2, 99, 'incremented', $2)",
        address.key,
        msgpack.packb({"type": "incremented", "by": 100}),
    )
    with pytest.raises(Unavailable):
        await system.ask(address, {"type": "increment"})
    # The connection was told to reconnect; the failed turn's effect never left.
    frames = []
    with pytest.raises(SubscriberClosed) as closed:
        while True:
            frames.append(await sub.receive())
    assert closed.value.code == CLOSE_ACTOR_RESET
    assert all(f.message.get("offset", 0) <= 1 for f in frames)
    # The next message reactivates from the store, which has the other writer's event.
    assert await system.ask(address, {"type": "increment"}) == 102
    assert await _event_offsets(db, address) == [1, 2, 3]


async def test_statistics_report_the_actor(system: ActorSystem, room) -> None:
    address = room()
    await system.ask(address, {"type": "increment"})
    stats = system.statistics()
    assert stats["live"] >= 1 and stats["live_by_kind"]["room"] >= 1
    assert stats["commit"]["events"] >= 1
    detail = await system.inspect(address)
    assert detail["state"]["count"] == 1
    assert detail["statistics"]["offset"] == 1
    assert detail["recent_events"][-1]["type"] == "incremented"


async def test_projections_run_in_event_order_within_a_batch(db, bridge) -> None:  # type: ignore[no-untyped-def]
    """Several writes of one actor in one group commit keep their order."""
    import uuid

    from ensemble.persistence.actor_store import Write, commit_writes

    table = f"proj_{uuid.uuid4().hex[:8]}"
    await db.execute(f"CREATE TABLE {table} (k text PRIMARY KEY, v text NOT NULL)")
    try:
        upsert = f"INSERT INTO {table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        delete = f"DELETE FROM {table} WHERE k = $1"
        key = uuid.uuid4().hex
        writes = [
            # join, leave, rejoin: grouped by statement this would end "deleted".
            Write("room", key, 1, projections=[(upsert, ("p", "joined"))]),
            Write("room", key, 1, projections=[(delete, ("p",))]),
            Write("room", key, 1, projections=[(upsert, ("p", "rejoined"))]),
            Write("room", uuid.uuid4().hex, 1, projections=[(upsert, ("q", "other")), (delete, ("q",))]),
        ]
        await db.run(commit_writes, writes)
        rows = {r["k"]: r["v"] for r in await db.fetch(f"SELECT k, v FROM {table}")}
        assert rows == {"p": "rejoined"}
    finally:
        await db.execute(f"DROP TABLE {table}")
