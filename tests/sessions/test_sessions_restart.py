"""`ensemble serve` killed mid-session (SIGTERM, then SIGKILL): nothing seen is lost or doubled.

Two technicians talk through a real server process.  One of them fires a
burst of messages and the server is stopped while they are in flight.  After
a restart both reconnect with ``since``, the sender re-sends whatever it has
no ack for (same client ids), and the conversation goes on.  Then:

- each client saw a gap-free, duplicate-free run of offsets;
- every message any client saw is in the database once, at that offset;
- every message the sender ever sent is stored exactly once, and the other
  technician saw each of them exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tests.gateway.conftest import Harness
from tests.sessions.conftest import DURABLE, WsClient, connect, field_team, start_session

FAST = {
    "ENSEMBLE_ARGON2_TIME_COST": "1", "ENSEMBLE_ARGON2_MEMORY_KIB": "1024", "ENSEMBLE_ARGON2_PARALLELISM": "1",
    "ENSEMBLE_RATE_LIMIT_AUTH_PER_MINUTE": "100000", "ENSEMBLE_RATE_LIMIT_USER_PER_MINUTE": "100000",
    "ENSEMBLE_RATE_LIMIT_TENANT_PER_MINUTE": "100000", "ENSEMBLE_SESSION_SEND_BURST": "1000",
    "ENSEMBLE_SESSION_SEND_PER_MINUTE": "100000", "ENSEMBLE_LOG_LEVEL": "warning", "ENSEMBLE_LOG_FORMAT": "json",
    "ENSEMBLE_SHUTDOWN_TIMEOUT_S": "5",
}


class ServerProcess:
    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.env = {**os.environ, **FAST, "ENSEMBLE_DATABASE_URL": database_url, "ENSEMBLE_DATA_DIR": str(data_dir)}
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> str:
        port_file = self.data_dir / "port.json"
        port_file.unlink(missing_ok=True)
        with open(self.data_dir / "server.log", "ab") as log:  # a pipe nobody reads could stall the server
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ensemble.cli", "serve", "--port", "0", "--port-file", str(port_file)],
                env=self.env, stdout=log, stderr=log,
            )
        with trio.fail_after(60):
            while not port_file.exists():
                assert self.proc.poll() is None, self.log()
                await trio.sleep(0.05)
        url: str = json.loads(port_file.read_text())["url"]
        return url

    async def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        with trio.fail_after(20):
            code = await trio.to_thread.run_sync(self.proc.wait)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text()[-3000:]


async def _read_until_closed(ws: WsClient) -> None:
    try:
        with trio.move_on_after(15):
            while True:
                await ws.recv(timeout=15)
    except (trio_websocket.ConnectionClosed, trio.TooSlowError):
        pass


def _acked(ws: WsClient) -> set[str]:
    return {f["client_id"] for f in ws.frames if f.get("type") == "ack"}


def _check_run(frames: list[dict[str, Any]]) -> None:
    """One client's view across connections: state, then every later offset once, in order."""
    offsets = [f["offset"] for f in frames if f.get("type") in DURABLE]
    start = next(f["offset"] for f in frames if f.get("type") == "session_state")
    assert offsets == list(range(start + 1, start + 1 + len(offsets))), offsets


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_restart_mid_session_loses_and_doubles_nothing(database_url: str, tmp_path: Path, db: Any, sig: int) -> None:
    server = ServerProcess(database_url, tmp_path)
    try:
        url = await server.start()
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            team = await field_team(Harness(None, http), technicians=2)  # type: ignore[arg-type]
            t1, t2 = team.techs
            sid = await start_session(team, t1, invite=[t2])
        sent = [f"m{n:02d}" for n in range(30)]
        a_frames: list[dict[str, Any]] = []
        b_frames: list[dict[str, Any]] = []

        async with connect(url, sid, t1.access_token) as a, connect(url, sid, t2.access_token) as b:
            await a.recv()
            await b.recv()
            for client_id in sent[:10]:
                await a.send({"type": "message", "client_id": client_id, "text": f"text {client_id}"})
            await a.until(lambda f: f["type"] == "ack" and f["client_id"] == sent[9])
            await b.until(lambda f: f["type"] == "new_message" and f["message"]["client_id"] == sent[9])
            # A burst in flight when the server goes down.
            for client_id in sent[10:20]:
                await a.send({"type": "message", "client_id": client_id, "text": f"text {client_id}"})
            await a.until(lambda f: f["type"] == "ack" and f["client_id"] == sent[11])
            await server.stop(sig)
            await _read_until_closed(a)
            await _read_until_closed(b)
            a_frames += a.frames
            b_frames += b.frames
            a_since, b_since = a.last_offset, b.last_offset

        url = await server.start()
        async with (
            connect(url, sid, t1.access_token, since=a_since) as a,
            connect(url, sid, t2.access_token, since=b_since) as b,
        ):
            a.frames = a_frames
            b.frames = b_frames
            # Re-send what was never acknowledged (the same client ids), then carry on.
            for client_id in [c for c in sent[10:20] if c not in _acked(a)] + sent[20:]:
                await a.send({"type": "message", "client_id": client_id, "text": f"text {client_id}"})
            await a.until(lambda f: f["type"] == "ack" and f["client_id"] == sent[-1], timeout=20)
            await b.until(lambda f: f["type"] == "new_message" and f["message"]["client_id"] == sent[-1], timeout=20)

        for frames in (a_frames, b_frames):
            _check_run(frames)
        rows = await db.fetch(
            'SELECT "offset", id, client_id FROM diagnostic_messages WHERE session_id = $1::uuid ORDER BY "offset"', sid
        )
        stored = {r["client_id"]: (r["offset"], str(r["id"])) for r in rows}
        assert sorted(r["client_id"] for r in rows) == sent  # each exactly once
        for frames in (a_frames, b_frames):
            for f in frames:
                if f.get("type") == "new_message":
                    m = f["message"]
                    assert stored[m["client_id"]] == (f["offset"], m["id"])
        seen_by_b = [f["message"]["client_id"] for f in b_frames if f.get("type") == "new_message"]
        assert sorted(seen_by_b) == sent
        # The log agrees with the projection and has no gaps.
        offsets = [r["offset"] for r in await db.fetch(
            'SELECT "offset" FROM actor_events WHERE kind = \'session\' AND key = $1 ORDER BY "offset"', sid
        )]
        assert offsets == list(range(1, len(offsets) + 1))
    finally:
        server.kill()
