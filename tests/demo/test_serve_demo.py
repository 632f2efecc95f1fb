"""``ensemble serve --demo`` as a real process, started twice on the same data directory.

First start: the printed credentials log in, the hub is online with three
printers, a printer's progress moves on the dashboard, a job started over
REST on an idle printer prints; SIGTERM stops everything cleanly.  Second
start: the same credentials, nothing seeded twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from ensemble.bridge import open_bridge
from ensemble.persistence.database import open_database
from tests.demo._helpers import DEMO_EMAILS, count_rows, login_token, printed_credentials
from tests.hubs._helpers import Gateway, Tenant, open_dashboard, upload_print_file


@asynccontextmanager
async def serving_demo(data_dir: Path, database_url: str, run: int) -> AsyncIterator[tuple[str, str]]:
    """``(url, stdout so far)`` of a running ``ensemble serve --demo``; SIGTERM and a clean exit after."""
    port_file = data_dir / "port.json"
    port_file.unlink(missing_ok=True)
    stdout, stderr = data_dir / f"stdout-{run}.txt", data_dir / f"stderr-{run}.log"
    env = {**os.environ, "ENSEMBLE_DATA_DIR": str(data_dir), "ENSEMBLE_DATABASE_URL": database_url,
           "ENSEMBLE_LOG_FORMAT": "json"}
    env.pop("ENSEMBLE_S3_ENDPOINT", None)  # the local object store in the data directory
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ensemble.cli", "serve", "--demo", "--port", "0", "--port-file", str(port_file)],
            env=env, stdout=out, stderr=err,
        )
    try:
        with trio.fail_after(90):
            while not port_file.exists():
                assert proc.poll() is None, f"server exited: {stderr.read_text()[-3000:]}"
                await trio.sleep(0.1)
        url = json.loads(port_file.read_text())["url"]
        yield url, stdout.read_text()
    finally:
        started = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await trio.to_thread.run_sync(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"no clean stop within 20 s: {stderr.read_text()[-3000:]}") from None
    assert proc.returncode == 0, stderr.read_text()[-3000:]
    assert time.monotonic() - started < 10


@pytest.mark.slow
async def test_serve_demo_twice(fresh_database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    async with serving_demo(data_dir, fresh_database_url, 1) as (url, printed):
        credentials = printed_credentials(printed)
        assert {email: role for email, (role, _) in credentials.items()} == DEMO_EMAILS
        assert f"console:     {url}/" in printed
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            tokens = {email: await login_token(http, email, password) for email, (_, password) in credentials.items()}
            owner = Tenant(http=http, email="owner@demo.ensemble.local", user_id="", tenant_id="", role="owner",
                           access_token=tokens["owner@demo.ensemble.local"], refresh_token="")
            printers = {p["name"]: p["id"] for p in (await owner.get("/api/v1/printers")).json()["data"]}
            assert len(printers) == 3
            gateway = Gateway(url=url, port=int(url.rsplit(":", 1)[1]), services=None)
            async with open_dashboard(gateway, tokens["viewer@demo.ensemble.local"]) as board:
                await board.wait_for(lambda b: [h.get("is_online") for h in b.hubs.values()] == [True], 60)
                assert set(board.printers) == set(printers.values())
                # Something prints by itself, and its progress moves.
                await board.wait_for(lambda b: any((p.get("progress") or 0) > 0 for p in b.printers.values()), 60)
                busy = next(pid for pid, p in board.printers.items() if (p.get("progress") or 0) > 0)
                seen = board.printers[busy]["progress"]
                await board.wait_for(lambda b: (b.printers[busy].get("progress") or 0) > seen, 60)

                # Bay 3 is left free: a job started over REST prints on its simulator.
                bay3 = printers["Bay 3 - Voron 2.4"]
                part = await upload_print_file(owner, print_seconds=3, layers=6, name="bracket.gcode")
                r = await owner.post("/api/v1/print-jobs", json={"printer_id": bay3, "file_id": part["id"]})
                assert r.status_code == 201, r.text
                job = r.json()["data"]
                await board.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["completed"], 60)
                assert "printing" in board.job_history[job["id"]]
                assert board.printers[bay3]["progress"] == 100

    async with open_bridge() as bridge, open_database(bridge, fresh_database_url) as db:
        before = await count_rows(db)
    stored = (data_dir / "demo-credentials.json").read_text()

    async with serving_demo(data_dir, fresh_database_url, 2) as (url, printed):
        assert printed_credentials(printed) == credentials
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            token = await login_token(http, "owner@demo.ensemble.local", credentials["owner@demo.ensemble.local"][1])
            r = await http.get("/api/v1/hubs", headers={"Authorization": f"Bearer {token}"})
            assert len(r.json()["data"]) == 1

    assert (data_dir / "demo-credentials.json").read_text() == stored
    async with open_bridge() as bridge, open_database(bridge, fresh_database_url) as db:
        after = await count_rows(db)
        seeded = await db.run(lambda conn: conn.fetch(
            "SELECT file_name, count(*) AS n FROM print_jobs WHERE file_name IN ($1, $2) GROUP BY file_name",
            "cable-clip.gcode", "gear-housing.gcode"))
    for table in ("tenants", "users", "memberships", "hubs", "printers", "files", "knowledge_documents"):
        assert after[table] == before[table], table
    assert {row["file_name"]: row["n"] for row in seeded} == {"cable-clip.gcode": 1, "gear-housing.gcode": 1}
