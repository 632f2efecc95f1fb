"""A running server with the lane's test routes, and WebSocket helpers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from ensemble.gateway.realtime import BadFrame, RealtimeSocket, realtime_route
from ensemble.gateway.realtime._bench import register_bench_routes
from tests.server import RunningServer, running_server

register_bench_routes()  # test code only: never registered in production


@realtime_route("/test/echo/{name}/ws")
async def _echo_socket(socket: RealtimeSocket, services: Any, name: str) -> None:
    """Answers every message with {"type": "echo", "got": message}; BadFrame with an error frame."""
    if socket.headers.get("x-test-reject"):
        await socket.reject(403, "forbidden", "rejected by the handler")
        return
    if socket.headers.get("x-test-raise-before-accept"):
        raise RuntimeError("handler bug before accept")
    await socket.accept()
    socket.send({"type": "hello", "name": name, "format": socket.wire_format, "query": socket.query})
    while True:
        try:
            message = await socket.receive()
        except BadFrame as exc:
            socket.send(exc.to_message())
            continue
        if message.get("type") == "raise":
            raise RuntimeError("deliberate handler bug")
        if message.get("type") == "return":
            return
        if message.get("type") == "close":
            await socket.close(int(message["code"]), str(message.get("reason", "")))
            continue
        socket.send({"type": "echo", "got": message})


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(database_url, tmp_path) as srv:
        yield srv


def ws_url(srv: RunningServer, path: str) -> str:
    return srv.url.replace("http://", "ws://") + path


async def next_json(ws: WebSocketConnection, timeout: float = 5.0) -> dict[str, Any]:
    with trio.fail_after(timeout):
        message = await ws.get_message()
    if isinstance(message, bytes):
        return msgpack.unpackb(message, raw=False)  # type: ignore[no-any-return]
    return json.loads(message)  # type: ignore[no-any-return]


@asynccontextmanager
async def open_ws(url: str, **kwargs: Any) -> AsyncIterator[WebSocketConnection]:
    """``open_websocket_url``, plus closing its TCP stream afterwards: trio-websocket
    0.12 leaves the socket open when the *server* closes first (its ``aclose``
    returns early once a close reason is set), which pytest reports as an
    unraisable ResourceWarning."""
    connection: WebSocketConnection | None = None
    try:
        async with open_websocket_url(url, **kwargs) as ws:
            connection = ws
            yield ws
    finally:
        if connection is not None:
            await connection._stream.aclose()
