"""`ensemble serve` as a process: one port for REST and the lane, SIGTERM closes sockets with 1001."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from tests.realtime.conftest import next_json, open_ws

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_sigterm_closes_realtime_sockets_with_1001(database_url: str, tmp_path: Path) -> None:
    port_file = tmp_path / "port.json"
    env = {
        **os.environ,
        "ENSEMBLE_DATABASE_URL": database_url,
        "ENSEMBLE_DATA_DIR": str(tmp_path / "data"),
        "ENSEMBLE_PORT": "0",
        "ENSEMBLE_BENCH_ROUTES": "1",
        "ENSEMBLE_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ensemble.cli", "serve", "--port-file", str(port_file)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(60):
            while not (port_file.exists() and port_file.read_text()):
                assert proc.poll() is None, "the server exited"
                await trio.sleep(0.1)
        url = json.loads(port_file.read_text())["url"]
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
        async with open_ws(url.replace("http://", "ws://") + "/bench/rooms/proc/ws") as ws:
            assert (await next_json(ws))["type"] == "room_state"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await next_json(ws, timeout=15)
            assert closed.value.reason.code == 1001
        with trio.fail_after(30):
            while proc.poll() is None:
                await trio.sleep(0.05)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
