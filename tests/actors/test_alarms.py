"""Alarms: durable, fire at least once, also after a restart."""

from __future__ import annotations

import time

import trio

from ensemble.actors import ActorSystem


async def _wait_for(predicate, timeout: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.05)


async def test_alarm_fires_and_is_cleared(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    await system.ask(address, {"type": "set_alarm", "at": time.time() + 0.3})
    assert await db.fetchval("SELECT count(*) FROM actor_alarms WHERE key = $1", address.key) == 1

    async def fired() -> bool:
        return await db.fetchval(
            "SELECT count(*) FROM actor_events WHERE key = $1 AND type = 'alarm_fired'", address.key
        ) == 1

    await _wait_for(fired)
    assert await db.fetchval("SELECT count(*) FROM actor_alarms WHERE key = $1", address.key) == 0
    state = await system.ask(address, {"type": "get"})
    assert state == {"count": 0, "messages": 0}


async def test_deleted_alarm_does_not_fire(system: ActorSystem, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    await system.ask(address, {"type": "set_alarm", "at": time.time() + 0.2})
    await system.ask(address, {"type": "delete_alarm"})
    await trio.sleep(0.6)
    assert await db.fetchval("SELECT count(*) FROM actor_events WHERE key = $1 AND type = 'alarm_fired'", address.key) == 0


async def test_alarm_fires_after_restart(open_system, db, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    async with open_system() as first:
        await first.ask(address, {"type": "set_alarm", "at": time.time() + 1.0})
    # The process "restarted" before the due time; a new system finds the alarm.
    async with open_system(alarm_poll_s=0.2) as second:
        assert not second.is_active(address)

        async def fired() -> bool:
            return await db.fetchval(
                "SELECT count(*) FROM actor_events WHERE key = $1 AND type = 'alarm_fired'", address.key
            ) >= 1

        await _wait_for(fired)
        assert second.alarms_fired >= 1
