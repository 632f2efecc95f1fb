"""Broadcasts through the EchoRoom bench route: fan-out, slow consumers, since."""

from __future__ import annotations

import json
import uuid

import trio
from trio_websocket import ConnectionClosed

from ensemble.actors import Address
from tests.realtime.conftest import next_json, open_ws, ws_url
from tests.realtime.rawws import RawClient, close_code
from tests.server import RunningServer


def room_path(key: str, **query: object) -> str:
    path = f"/bench/rooms/{key}/ws"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return path


async def test_broadcast_reaches_every_client_in_both_formats(server: RunningServer) -> None:
    key = uuid.uuid4().hex
    received: dict[int, list[dict[str, object]]] = {}

    async def client(i: int, ready: trio.MemorySendChannel[int]) -> None:
        fmt = "msgpack" if i % 2 else "json"
        async with open_ws(ws_url(server, room_path(key, format=fmt))) as ws:
            state = await next_json(ws)
            assert state["type"] == "room_state"
            await ready.send(i)
            got = received.setdefault(i, [])
            while len(got) < 5:
                message = await ws.get_message()
                assert isinstance(message, bytes if fmt == "msgpack" else str)
                got.append(await _decode(message))

    n = 60
    send, recv = trio.open_memory_channel[int](n)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(client, i, send)
            for _ in range(n):
                await recv.receive()
            async with open_ws(ws_url(server, room_path(key))) as sender:
                await next_json(sender)
                for j in range(5):
                    await sender.send_message(json.dumps({"type": "say", "text": f"m{j}", "client_id": f"c{j}"}))
    for i in range(n):
        assert [m["text"] for m in received[i]] == [f"m{j}" for j in range(5)]
        offsets = [m["offset"] for m in received[i]]
        assert offsets == sorted(offsets) and len(set(offsets)) == 5
    # Every broadcast was encoded once per format, not once per socket.
    lane = server.services.extras["realtime_lane"]
    assert lane.cache.misses <= 2 * 5 + 2 * 2 * n  # + each socket's own state frame (both formats at most)


async def _decode(message: str | bytes) -> dict[str, object]:
    import msgpack

    return msgpack.unpackb(message, raw=False) if isinstance(message, bytes) else json.loads(message)


async def test_slow_consumer_gets_4100_while_a_fast_one_gets_everything_in_order(server: RunningServer) -> None:
    key = uuid.uuid4().hex
    address = Address("room", key)
    actors = server.services.actors
    total = 1500
    padding = "p" * 16_000  # big frames: the kernel buffers fill after a few hundred
    # The slow client: a tiny receive window and it never reads.
    slow = await RawClient.connect(server.url, room_path(key), rcvbuf=4096)
    try:
        assert slow.status == 101
        fast_got: list[int] = []
        progress = trio.Condition()

        async def fast_reader(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            async with open_ws(ws_url(server, room_path(key)), max_message_size=1 << 20) as ws:
                await next_json(ws)  # room_state
                task_status.started()
                while len(fast_got) < total:
                    fast_got.append(int((await next_json(ws, timeout=20))["who"].split(":")[0]))
                    async with progress:
                        progress.notify_all()

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(fast_reader)
                for i in range(total):
                    # Fast means keeping up: never more than 64 frames behind
                    # (the buffer allows 256 plus what the kernel holds).
                    async with progress:
                        while i - len(fast_got) > 64:
                            await progress.wait()
                    await actors.tell(address, {"type": "typing", "who": f"{i}:{padding}"})
        assert fast_got == list(range(total))
        # The slow one: whatever fitted in the buffers, then close 4100 (the tail
        # of frames it never read was dropped, the close frame still sent).
        with trio.fail_after(20):
            while True:
                opcode, payload = await slow.read_frame()
                if opcode in (0x8, -1):
                    break
        assert opcode == 0x8 and close_code(payload) == 4100
        assert server.services.extras["realtime_lane"].slow_consumer_closes >= 1
    finally:
        slow.close()


async def test_reconnect_with_since_gets_exactly_the_missed_events(server: RunningServer) -> None:
    key = uuid.uuid4().hex
    async with open_ws(ws_url(server, room_path(key))) as first:
        state = await next_json(first)
        for j in range(3):
            await first.send_message(json.dumps({"type": "say", "text": f"a{j}", "client_id": f"a{j}"}))
        seen = [await next_json(first) for _ in range(3)]
    last = seen[-1]["offset"]
    assert [m["text"] for m in seen] == ["a0", "a1", "a2"] and last == state["offset"] + 3
    async with open_ws(ws_url(server, room_path(key))) as other:
        await next_json(other)
        for j in range(4):
            await other.send_message(json.dumps({"type": "say", "text": f"b{j}", "client_id": f"b{j}"}))
        for _ in range(4):
            await next_json(other)
    async with open_ws(ws_url(server, room_path(key, since=last))) as again:
        missed = [await next_json(again) for _ in range(4)]
        assert [m["text"] for m in missed] == ["b0", "b1", "b2", "b3"]
        assert [m["offset"] for m in missed] == [last + 1, last + 2, last + 3, last + 4]
        # ... and nothing else: the next frame is a fresh one.
        await again.send_message(json.dumps({"type": "say", "text": "c", "client_id": "c"}))
        assert (await next_json(again))["offset"] == last + 5


async def test_duplicate_say_is_not_broadcast_twice(server: RunningServer) -> None:
    key = uuid.uuid4().hex
    async with open_ws(ws_url(server, room_path(key))) as ws:
        await next_json(ws)
        for _ in range(2):
            await ws.send_message(json.dumps({"type": "say", "text": "once", "client_id": "same"}))
        await ws.send_message(json.dumps({"type": "echo", "n": 1}))
        frames = [await next_json(ws), await next_json(ws)]
        assert [f["type"] for f in frames].count("said") == 1


async def test_closed_socket_is_dropped_by_the_actor(server: RunningServer) -> None:
    key = uuid.uuid4().hex
    async with open_ws(ws_url(server, room_path(key))) as ws:
        await next_json(ws)
    with trio.fail_after(5):
        while server.services.extras["realtime_lane"].sockets:
            await trio.sleep(0.01)
    info = await server.services.actors.inspect(Address("room", key))
    assert info["statistics"]["subscribers"] == 0


async def test_closed_by_actor_reset_code_reaches_client(server: RunningServer) -> None:
    # A subscriber closed by its actor with a non-normal code closes the socket with it.
    key = uuid.uuid4().hex
    async with open_ws(ws_url(server, room_path(key))) as ws:
        await next_json(ws)
        lane = server.services.extras["realtime_lane"]
        (socket,) = [s for s in lane.sockets if s.params.get("key") == key]
        (sub,) = socket._subscribers
        sub.close(4101, "actor restarted: reconnect with since")
        try:
            await next_json(ws)
            raise AssertionError("expected a close")
        except ConnectionClosed as closed:
            assert closed.reason.code == 4101
