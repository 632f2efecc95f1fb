"""Ping/pong both ways, the idle timeout, and graceful shutdown (1001)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, connect_websocket_url

from tests.realtime.conftest import next_json, open_ws, ws_url
from tests.realtime.rawws import RawClient, close_code
from tests.server import RunningServer, running_server


async def test_client_ping_gets_pong(server: RunningServer) -> None:
    async with open_ws(ws_url(server, "/test/echo/ping/ws")) as ws:
        await next_json(ws)
        with trio.fail_after(5):
            await ws.ping(b"are you there")
        await ws.send_message(json.dumps({"type": "still"}))
        assert (await next_json(ws))["got"] == {"type": "still"}


async def test_raw_ping_is_answered_with_the_same_payload(server: RunningServer) -> None:
    client = await RawClient.connect(server.url, "/test/echo/rawping/ws")
    try:
        await client.read_frame()  # hello
        await client.send_frame(0x9, b"abc")
        # The handler is the reader: the pong goes out when it next receives.
        assert await client.read_frame() == (0xA, b"abc")
    finally:
        client.close()


@pytest.fixture
async def quick_keepalive(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("ENSEMBLE_WS_PING_INTERVAL_S", "0.2")
    monkeypatch.setenv("ENSEMBLE_WS_IDLE_TIMEOUT_S", "0.8")
    async with running_server(database_url, tmp_path) as srv:
        yield srv  # type: ignore[misc]


async def test_silent_socket_is_pinged_and_survives_while_it_answers(quick_keepalive: RunningServer) -> None:
    client = await RawClient.connect(quick_keepalive.url, "/test/echo/alive/ws")
    try:
        await client.read_frame()  # hello
        pings = 0
        with trio.move_on_after(2.0):  # 2.5 idle timeouts
            while True:
                opcode, payload = await client.read_frame()
                assert opcode == 0x9, (opcode, payload)
                pings += 1
                await client.send_frame(0xA, payload)
        assert pings >= 3
        await client.send_text(json.dumps({"type": "still"}))
        assert json.loads((await client.read_frame())[1])["got"] == {"type": "still"}
    finally:
        client.close()


async def test_socket_that_never_answers_is_closed_1001_idle(quick_keepalive: RunningServer) -> None:
    client = await RawClient.connect(quick_keepalive.url, "/test/echo/dead/ws")
    try:
        await client.read_frame()  # hello
        with trio.fail_after(3):
            opcode, payload = await client.read_frame()
            assert opcode == 0x9  # the ping we ignore
            opcode, payload = await client.read_frame()
        assert opcode == 0x8
        assert close_code(payload) == 1001 and payload[2:] == b"idle timeout"
    finally:
        client.close()


async def test_trio_websocket_client_stays_connected_past_the_idle_timeout(quick_keepalive: RunningServer) -> None:
    # trio-websocket answers pings by itself: that is liveness enough.
    async with open_ws(ws_url(quick_keepalive, "/test/echo/tw/ws")) as ws:
        await next_json(ws)
        await trio.sleep(1.5)
        await ws.send_message(json.dumps({"type": "x"}))
        assert (await next_json(ws))["got"] == {"type": "x"}


async def test_graceful_shutdown_closes_sockets_with_1001(database_url: str, tmp_path: Path) -> None:
    key = uuid.uuid4().hex
    async with trio.open_nursery() as nursery:
        async with running_server(database_url, tmp_path) as srv:
            echo = await connect_websocket_url(nursery, ws_url(srv, "/test/echo/bye/ws"))
            room = await connect_websocket_url(nursery, ws_url(srv, f"/bench/rooms/{key}/ws?format=msgpack"))
            await next_json(echo)
            await next_json(room)
            started = trio.current_time()
        # The server has stopped; both clients were told why.
        assert trio.current_time() - started < 5
        for ws in (echo, room):
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1001
            assert closed.value.reason.reason == "server shutting down"
            await ws._stream.aclose()  # see conftest.open_ws
