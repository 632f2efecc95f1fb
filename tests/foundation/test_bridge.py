"""The asyncio bridge: results, errors, cancellation, events back, shutdown."""

from __future__ import annotations

import asyncio

import pytest
import trio

from ensemble.errors import Unavailable
from ensemble.bridge import AsyncioBridge, open_bridge


async def test_result_crosses_back(bridge: AsyncioBridge) -> None:
    async def add(a: int, b: int) -> tuple[int, bool]:
        await asyncio.sleep(0)
        # Runs on the bridge's loop, not in trio's thread.
        return a + b, asyncio.get_running_loop() is bridge.loop

    assert await bridge.run(add, 2, 3) == (5, True)


async def test_exception_propagates_unchanged(bridge: AsyncioBridge) -> None:
    class Boom(Exception):
        pass

    async def fail() -> None:
        raise Boom("from asyncio")

    with pytest.raises(Boom, match="from asyncio"):
        await bridge.run(fail)


async def test_cancellation_cancels_the_asyncio_task_and_waits_for_it(bridge: AsyncioBridge) -> None:
    state: dict[str, object] = {}

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            # Cleanup that takes a moment: trio must wait for it.
            await asyncio.sleep(0.05)
            state["cleaned"] = True
            raise

    with trio.move_on_after(0.1) as scope:
        await bridge.run(slow)
    assert scope.cancelled_caught
    assert state.get("cleaned") is True
    assert bridge.statistics()["pending"] == 0


async def test_cancelled_query_leaves_connection_usable(db) -> None:  # type: ignore[no-untyped-def]
    # One connection only, so the next query must reuse the interrupted one.
    from ensemble.persistence.database import open_database

    async with open_database(db.bridge, db.dsn, min_size=1, max_size=1) as single:
        with trio.move_on_after(0.2) as scope:
            await single.execute("SELECT pg_sleep(10)")
        assert scope.cancelled_caught
        with trio.fail_after(5):
            assert await single.fetchval("SELECT 41 + 1") == 42


async def test_channel_brings_events_back_in_order_and_bounded(bridge: AsyncioBridge) -> None:
    channel = bridge.open_channel(max_buffer=5)

    async def produce() -> None:
        for i in range(8):
            channel.send_threadsafe(i)

    await bridge.run(produce)
    await trio.testing.wait_all_tasks_blocked()
    got = []
    while True:
        try:
            got.append(channel.receive.receive_nowait())
        except trio.WouldBlock:
            break
    assert got == [0, 1, 2, 3, 4]
    assert channel.dropped == 3


async def test_shutdown_with_pending_tasks_wakes_callers() -> None:
    results: list[object] = []
    started = trio.Event()

    async def forever() -> None:
        await asyncio.sleep(3600)

    async with trio.open_nursery() as nursery:
        b = AsyncioBridge()
        b.start()

        async def caller() -> None:
            started.set()
            try:
                await b.run(forever)
            except Unavailable as exc:
                results.append(exc)

        nursery.start_soon(caller)
        await started.wait()
        await trio.sleep(0.05)
        with trio.fail_after(5):
            await b.aclose()
    assert len(results) == 1 and isinstance(results[0], Unavailable)
    with pytest.raises(Unavailable):
        await b.run(forever)


async def test_open_bridge_closes_thread() -> None:
    async with open_bridge() as b:
        thread = b._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()


async def test_a_call_cancelled_before_its_task_starts_still_returns(bridge: AsyncioBridge) -> None:
    # The cancel request reaches the loop right behind the start: the asyncio
    # task is cancelled before its first step, so the coroutine never runs.
    ran = []

    async def work() -> None:
        ran.append(1)

    with trio.fail_after(5):
        for _ in range(20):
            with trio.CancelScope() as scope:
                scope.cancel()
                await bridge.run(work)
            assert scope.cancelled_caught
    assert bridge.statistics()["pending"] == 0


async def test_many_concurrent_calls_each_get_their_own_result(bridge: AsyncioBridge) -> None:
    async def echo(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        return i

    results: dict[int, int] = {}

    async def one(i: int) -> None:
        results[i] = await bridge.run(echo, i)

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(one, i)
    assert results == {i: i for i in range(200)}
    assert bridge.statistics()["pending"] == 0
