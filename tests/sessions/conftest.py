"""End-to-end helpers for diagnostic sessions: a field team, and a WebSocket client."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgpack
import pytest
import trio
import trio_websocket

from tests.gateway.conftest import Harness, User, h, srv  # noqa: F401 - fixtures reused
from tests.server import RunningServer, running_server

DURABLE = frozenset({
    "session_created", "participant_joined", "participant_left", "presence", "new_message", "reading",
    "attachment_added", "ai_requested", "session_completed",
})


@dataclass
class Team:
    owner: User
    techs: list[User]
    client_id: str
    equipment_id: str


async def field_team(h: Harness, technicians: int = 3, *, tenant_name: str = "Cool Air") -> Team:
    owner = await h.signup(tenant_name=tenant_name)
    techs = []
    for n in range(technicians):
        techs.append(await h.member(owner, "technician", name=f"Tech {n + 1}"))
    r = await owner.post("/api/v1/clients", json={"name": "Hotel Aurora"})
    assert r.status_code == 201, r.text
    client_id = r.json()["data"]["id"]
    r = await owner.post(
        "/api/v1/equipment",
        json={"name": "Rooftop unit 2", "client_id": client_id, "manufacturer": "Carrier", "model_number": "24ACC6",
              "system_type": "split system", "serial_number": "SN-123"},
    )
    assert r.status_code == 201, r.text
    return Team(owner, techs, client_id, r.json()["data"]["id"])


async def start_session(team: Team, creator: User, *, invite: list[User] | None = None, mode: str = "guided") -> str:
    r = await creator.post(
        "/api/v1/diagnostic/sessions", json={"client_id": team.client_id, "equipment_id": team.equipment_id, "mode": mode}
    )
    assert r.status_code == 201, r.text
    session_id: str = r.json()["data"]["id"]
    for guest in invite or []:
        r = await creator.post(f"/api/v1/diagnostic/sessions/{session_id}/invite", json={"technician_id": guest.user_id})
        assert r.status_code == 200, r.text
    return session_id


def ws_url(base: str, session_id: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v is not None}
    suffix = f"?{urlencode(params)}" if params else ""
    return base.replace("http://", "ws://") + f"/api/v1/diagnostic/sessions/{session_id}/ws{suffix}"


@dataclass
class WsClient:
    """One device of a technician: sends frames, records everything it receives."""

    ws: trio_websocket.WebSocketConnection
    fmt: str = "json"
    frames: list[dict[str, Any]] = field(default_factory=list)
    last_offset: int | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        if self.fmt == "msgpack":
            await self.ws.send_message(msgpack.packb(frame, use_bin_type=True))
        else:
            await self.ws.send_message(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send_message(data)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            raw = await self.ws.get_message()
        frame: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw, raw=False)
        if isinstance(raw, str) != (self.fmt == "json"):
            raise AssertionError(f"a {self.fmt} socket got a {'text' if isinstance(raw, str) else 'binary'} frame")
        self.frames.append(frame)
        if frame.get("type") in DURABLE or frame.get("type") in ("session_state", "resync"):
            self.last_offset = frame["offset"]
        return frame

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        with trio.fail_after(timeout):
            while True:
                frame = await self.recv(timeout)
                got.append(frame)
                if predicate(frame):
                    return got

    async def closed(self, timeout: float = 10.0) -> int:
        """Read until the server closes; the close code."""
        with trio.fail_after(timeout):
            while True:
                try:
                    await self.recv(timeout)
                except trio_websocket.ConnectionClosed as exc:
                    return int(exc.reason.code)

    def events(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") in DURABLE]


@asynccontextmanager
async def connect(
    base: str, session_id: str, token: str | None, *, fmt: str = "json", since: int | None = None,
    first_frame_auth: bool = False,
) -> AsyncIterator[WsClient]:
    url = ws_url(base, session_id, token=None if first_frame_auth else token, since=since)
    async with trio_websocket.open_websocket_url(url, subprotocols=[f"ensemble.{fmt}"]) as ws:
        client = WsClient(ws, fmt)
        try:
            if first_frame_auth:
                await client.send({"type": "auth", "token": token})
            yield client
        finally:
            # trio-websocket 0.12 never closes a client's TCP stream when the
            # *server* closed the WebSocket (it waits for EOF, then leaves the
            # socket open): close it here, or warnings-as-errors trips on GC.
            with trio.CancelScope(shield=True):
                if ws.closed is not None:
                    await ws._stream.aclose()


async def refused(base: str, session_id: str, token: str | None, **query: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP answer to a WebSocket upgrade the server refuses: (status, body).

    A plain upgrade request: trio-websocket leaves its socket open when a
    handshake is rejected, which the warnings-as-errors setting would report.
    """
    import base64
    import os

    import httpx

    url = ws_url(base, session_id, token=token, **query).replace("ws://", "http://")
    headers = {
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(url, headers=headers)
    assert r.status_code != 101, "the upgrade was accepted"
    return r.status_code, r.json()


def sent(frames: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(f["offset"], f["type"]) for f in frames if f.get("type") in DURABLE]


async def count_rows(h: Harness, session_id: str) -> tuple[int, int, int]:
    """(log events, message rows, participant rows) of one session."""
    events = await h.db.fetchval("SELECT count(*) FROM actor_events WHERE kind = 'session' AND key = $1", session_id)
    messages = await h.db.fetchval("SELECT count(*) FROM diagnostic_messages WHERE session_id = $1", uuid.UUID(session_id))
    participants = await h.db.fetchval(
        "SELECT count(*) FROM diagnostic_participants WHERE session_id = $1", uuid.UUID(session_id)
    )
    return int(events), int(messages), int(participants)


@pytest.fixture
def session_server(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """A server with session limits changed: ``session_server(send_burst=3)``."""

    @asynccontextmanager
    async def _open(**limits: Any) -> AsyncIterator[tuple[RunningServer, Harness]]:
        for name, value in limits.items():
            monkeypatch.setenv(f"ENSEMBLE_SESSION_{name.upper()}", str(value))
        async with running_server(database_url, tmp_path) as server, server.client() as http:
            yield server, Harness(server, http)

    return _open
