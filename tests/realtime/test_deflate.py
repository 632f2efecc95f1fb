"""permessage-deflate: off by default, negotiated when configured, frames still shared."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import trio
from websockets.sync.client import connect

from tests.realtime.conftest import ws_url
from tests.server import RunningServer, running_server


def _talk(
    url: str, messages: list[str], expect: int, ready: threading.Event | None = None
) -> tuple[str | None, list[str]]:
    """A `websockets` client (it offers permessage-deflate by default), in a thread."""
    with connect(url, open_timeout=5, close_timeout=2) as ws:
        extensions = [ext.name for ext in ws.protocol.extensions]
        got = [ws.recv(timeout=5)]
        if ready is not None:
            ready.set()
        for message in messages:
            ws.send(message)
        while len(got) < expect:
            got.append(ws.recv(timeout=5))  # type: ignore[arg-type]
    return (extensions[0] if extensions else None), [str(g) for g in got]


async def test_deflate_is_off_by_default(server: RunningServer) -> None:
    extension, got = await trio.to_thread.run_sync(_talk, ws_url(server, "/test/echo/nodeflate/ws"), ['{"n":1}'], 2)
    assert extension is None
    assert json.loads(got[1]) == {"type": "echo", "got": {"n": 1}}


@pytest.fixture
async def deflating(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("ENSEMBLE_WS_PERMESSAGE_DEFLATE", "1")
    async with running_server(database_url, tmp_path) as srv:
        yield srv  # type: ignore[misc]


async def test_deflate_when_configured_both_directions(deflating: RunningServer) -> None:
    big = json.dumps({"type": "big", "text": "compress me " * 500})
    extension, got = await trio.to_thread.run_sync(_talk, ws_url(deflating, "/test/echo/deflate/ws"), [big], 2)
    assert extension == "permessage-deflate"
    assert json.loads(got[0])["type"] == "hello"
    assert json.loads(got[1]) == {"type": "echo", "got": json.loads(big)}


async def test_deflated_broadcast_reaches_plain_and_deflate_clients(deflating: RunningServer) -> None:
    key = uuid.uuid4().hex
    url = ws_url(deflating, f"/bench/rooms/{key}/ws")
    say = json.dumps({"type": "say", "text": "hello " * 100, "client_id": "x"})
    # Two deflate clients: one says, both receive the same (cached, compressed) frame.
    async with trio.open_nursery() as nursery:
        results: list[list[str]] = []

        attached = threading.Event()

        async def listener() -> None:
            results.append((await trio.to_thread.run_sync(_talk, url, [], 2, attached))[1])

        nursery.start_soon(listener)
        with trio.fail_after(5):
            while not attached.is_set():
                await trio.sleep(0.01)
        _, mine = await trio.to_thread.run_sync(_talk, url, [say], 2)
    assert json.loads(mine[1])["text"] == "hello " * 100
    assert json.loads(results[0][1])["text"] == "hello " * 100
