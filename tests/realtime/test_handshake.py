"""Handshake, format selection and one-port routing (lane vs. Hypercorn)."""

from __future__ import annotations

import json

import httpx
import msgpack
import pytest
import trio
from trio_websocket import ConnectionClosed

from tests.realtime.conftest import next_json, open_ws, ws_url
from tests.realtime.rawws import rejection
from tests.server import RunningServer


async def test_json_by_default(server: RunningServer) -> None:
    async with open_ws(ws_url(server, "/test/echo/a/ws")) as ws:
        assert ws.subprotocol is None
        message = await ws.get_message()
        assert isinstance(message, str)
        assert json.loads(message) == {"type": "hello", "name": "a", "format": "json", "query": {}}
        await ws.send_message(json.dumps({"type": "ping", "n": 1}))
        assert await next_json(ws) == {"type": "echo", "got": {"type": "ping", "n": 1}}


@pytest.mark.parametrize(
    ("offered", "selected", "fmt"),
    [
        (["ensemble.msgpack"], "ensemble.msgpack", "msgpack"),
        (["ensemble.json"], "ensemble.json", "json"),
        (["other", "ensemble.msgpack", "ensemble.json"], "ensemble.msgpack", "msgpack"),
        (["other"], None, "json"),
    ],
)
async def test_subprotocol_selects_the_format(
    server: RunningServer, offered: list[str], selected: str | None, fmt: str
) -> None:
    async with open_ws(ws_url(server, "/test/echo/b/ws"), subprotocols=offered) as ws:
        assert ws.subprotocol == selected
        hello = await ws.get_message()
        assert isinstance(hello, bytes if fmt == "msgpack" else str)
        decoded = msgpack.unpackb(hello) if isinstance(hello, bytes) else json.loads(hello)
        assert decoded["format"] == fmt


async def test_query_format_msgpack_both_directions(server: RunningServer) -> None:
    async with open_ws(ws_url(server, "/test/echo/c/ws?format=msgpack&x=1")) as ws:
        hello = await ws.get_message()
        assert isinstance(hello, bytes)
        assert msgpack.unpackb(hello) == {"type": "hello", "name": "c", "format": "msgpack", "query": {"format": "msgpack", "x": "1"}}
        # Binary in (msgpack) and text in (JSON) both decode, whatever the socket's format.
        await ws.send_message(msgpack.packb({"type": "m", "data": b"\x00\x01"}))
        assert await next_json(ws) == {"type": "echo", "got": {"type": "m", "data": b"\x00\x01"}}
        await ws.send_message(json.dumps({"type": "t"}))
        reply = await ws.get_message()
        assert isinstance(reply, bytes) and msgpack.unpackb(reply) == {"type": "echo", "got": {"type": "t"}}


async def test_unknown_format_is_400(server: RunningServer) -> None:
    status, body = await rejection(server.url, "/test/echo/d/ws?format=xml")
    assert status == 400 and body["error"] == "invalid_input"


async def test_unknown_realtime_path_is_404_json(server: RunningServer) -> None:
    status, body = await rejection(server.url, "/api/v1/nowhere/ws")
    assert status == 404
    assert body == {"error": "not_found", "message": "no WebSocket endpoint at /api/v1/nowhere/ws"}


async def test_handler_reject_is_an_http_error(server: RunningServer) -> None:
    status, body = await rejection(server.url, "/test/echo/e/ws", {"X-Test-Reject": "1"})
    assert (status, body) == (403, {"error": "forbidden", "message": "rejected by the handler"})


async def test_handler_bug_before_accept_is_500(server: RunningServer) -> None:
    status, body = await rejection(server.url, "/test/echo/f/ws", {"X-Test-Raise-Before-Accept": "1"})
    assert status == 500 and body["error"] == "internal_error"


async def test_invalid_handshake_is_400(server: RunningServer) -> None:
    # An upgrade without Sec-WebSocket-Key never reaches the handler.
    sock = trio.socket.socket()
    host, port = server.url.removeprefix("http://").split(":")
    await sock.connect((host, int(port)))
    await sock.send(b"GET /test/echo/g/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    data = b""
    while True:
        chunk = await sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 400")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"] == "bad_request"


async def test_rest_is_served_on_the_same_port(server: RunningServer) -> None:
    async with server.client() as http:
        r = await http.get("/healthz")
        assert r.status_code == 200
        # A plain GET on a real-time path is not an upgrade: Quart answers (404).
        r = await http.get("/test/echo/h/ws")
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"
        # Keep-alive: several requests on one connection still work.
        for _ in range(3):
            assert (await http.get("/healthz")).status_code == 200
    async with httpx.AsyncClient(base_url=server.url) as http:
        big = await http.post("/healthz", content=b"x" * 200_000)
        assert big.status_code in (404, 405, 413)


async def test_handler_return_closes_1000_and_bug_closes_1011(server: RunningServer) -> None:
    async with open_ws(ws_url(server, "/test/echo/i/ws")) as ws:
        await ws.get_message()
        await ws.send_message(json.dumps({"type": "return"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1000
    async with open_ws(ws_url(server, "/test/echo/j/ws")) as ws:
        await ws.get_message()
        await ws.send_message(json.dumps({"type": "raise"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1011
    # ... and the server goes on.
    async with open_ws(ws_url(server, "/test/echo/k/ws")) as ws:
        assert (await next_json(ws))["type"] == "hello"


async def test_handler_close_with_code(server: RunningServer) -> None:
    async with open_ws(ws_url(server, "/test/echo/l/ws")) as ws:
        await ws.get_message()
        await ws.send_message(json.dumps({"type": "close", "code": 4403, "reason": "not yours"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert (closed.value.reason.code, closed.value.reason.reason) == (4403, "not yours")


async def test_lane_counters_reach_metrics(server: RunningServer) -> None:
    async with open_ws(ws_url(server, "/test/echo/m/ws")) as ws:
        await next_json(ws)
        await ws.send_message("not json")
        await next_json(ws)
        async with server.client() as http:
            r = await http.get("/metrics")
    assert r.status_code == 200
    text = r.text
    assert "ensemble_realtime_sockets_open 1.0" in text
    assert "ensemble_realtime_bad_frames_total" in text
    assert 'ensemble_websocket_connections{kind="echo"} 1.0' in text
