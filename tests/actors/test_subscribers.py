"""Subscribers: recovery with since, resync, slow-consumer policies, ephemeral frames."""

from __future__ import annotations

from typing import Any

import trio

from ensemble.actors import CLOSE_SLOW_CONSUMER, ActorSystem, Address, Behavior, Decision, Subscriber, SubscriberClosed
from ensemble.actors.examples import EchoRoom


def drain(sub: Subscriber) -> list[dict[str, Any]]:
    out = []
    while (frame := sub.receive_nowait()) is not None:
        out.append(frame.message)
    return out


async def test_attach_gets_state_then_live_events(system: ActorSystem, room) -> None:  # type: ignore[no-untyped-def]
    address = room()
    await system.ask(address, {"type": "increment", "by": 2})
    sub = system.new_subscriber("room")
    await system.attach(address, sub)
    await system.ask(address, {"type": "say", "text": "hello"})
    await system.tell(address, {"type": "typing", "who": "ann"})
    await system.ask(address, {"type": "get"})
    frames = drain(sub)
    assert frames[0] == {"type": "room_state", "count": 2, "messages": 0, "offset": 1, "epoch": 1}
    assert frames[1]["type"] == "said" and frames[1]["offset"] == 2 and frames[1]["text"] == "hello"
    # Ephemeral frames are not logged; they carry the offset already delivered.
    assert frames[2] == {"type": "typing", "who": "ann", "offset": 2, "epoch": 1}


async def test_reconnect_with_since_gets_exactly_the_missed_events(open_system, room) -> None:  # type: ignore[no-untyped-def]
    # A tiny ring forces the catch-up through the log in Postgres.
    async with open_system(ring_size=4) as system:
        address = room()
        sub = system.new_subscriber("room")
        await system.attach(address, sub)
        for i in range(3):
            await system.ask(address, {"type": "say", "text": f"m{i}"})
        seen = [f["offset"] for f in drain(sub) if f["type"] == "said"]
        assert seen == [1, 2, 3]
        system.detach(address, sub)
        for i in range(3, 15):
            await system.ask(address, {"type": "say", "text": f"m{i}"})
        again = system.new_subscriber("room")
        await system.attach(address, again, since=3)
        await system.ask(address, {"type": "say", "text": "live"})
        frames = drain(again)
        assert [f["offset"] for f in frames] == list(range(4, 17))
        assert [f["text"] for f in frames] == [f"m{i}" for i in range(3, 15)] + ["live"]


async def test_since_older_than_retained_log_gets_resync(open_system, room) -> None:  # type: ignore[no-untyped-def]
    async with open_system(ring_size=2, snapshot_every=5, retained_events=100) as system:
        system.retained_events = 3  # below the configurable floor, to prune quickly
        address = room()
        for _ in range(12):
            await system.ask(address, {"type": "increment"})
        sub = system.new_subscriber("room")
        await system.attach(address, sub, since=1)
        frames = drain(sub)
        assert frames[0]["type"] == "resync"
        assert frames[0]["offset"] == 12
        assert frames[0]["state"] == {"type": "room_state", "count": 12, "messages": 0}
        await system.ask(address, {"type": "increment"})
        assert [f["offset"] for f in drain(sub)] == [13]


async def test_slow_subscriber_is_disconnected_fast_one_gets_everything(open_system, room) -> None:  # type: ignore[no-untyped-def]
    async with open_system(subscriber_buffer=4) as system:
        address = room()
        slow = system.new_subscriber("room")
        fast = system.new_subscriber("room")
        await system.attach(address, slow)
        await system.attach(address, fast)
        got: list[int] = []

        async def reader() -> None:
            try:
                while True:
                    frame = await fast.receive()
                    if frame.message["type"] == "incremented":
                        got.append(frame.message["offset"])
            except SubscriberClosed:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for _ in range(50):
                await system.ask(address, {"type": "increment"})
            with trio.fail_after(5):
                while len(got) < 50:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert got == list(range(1, 51))
        assert slow.closed and slow.close_code == CLOSE_SLOW_CONSUMER
        assert system.live("room")[0].subscribers.keys() == {fast.id}


class Board(Behavior[dict[str, Any]]):
    """A dashboard-like actor: latest status per printer, coalesced for slow readers."""

    kind = "board"
    slow_consumer_policy = "coalesce"

    def initial_state(self, key: str) -> dict[str, Any]:
        return {}

    def decide(self, state: dict[str, Any], command: dict[str, Any], meta: Any) -> Decision:
        return Decision(broadcasts=[{"type": "printer_status", "printer": command["printer"], "progress": command["progress"]}])

    def apply(self, state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        return state

    def coalesce_key(self, frame: dict[str, Any]) -> Any:
        return frame.get("printer") if frame.get("type") == "printer_status" else None


async def test_slow_dashboard_gets_latest_state_per_printer(open_system) -> None:  # type: ignore[no-untyped-def]
    async with open_system(Board(), subscriber_buffer=3) as system:
        address = Address("board", "tenant-1")
        slow = system.new_subscriber("board")
        await system.attach(address, slow)
        drain(slow)
        for progress in range(1, 101):
            for printer in ("p1", "p2", "p3"):
                await system.tell(address, {"printer": printer, "progress": progress})
        # Asks fail fast on a full mailbox (by contract); wait for it to drain.
        with trio.fail_after(5):
            while system.live("board")[0].mailbox.statistics().current_buffer_used:
                await trio.sleep(0.01)
        await system.ask(address, {"printer": "p1", "progress": 100})
        frames = drain(slow)
        assert not slow.closed
        latest = {f["printer"]: f["progress"] for f in frames}
        assert latest == {"p1": 100, "p2": 100, "p3": 100}
        assert len(frames) <= 3
        assert slow.coalesced > 250
