"""`ensemble serve` as a real process: ready, graceful on SIGTERM, data survives a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def start(data_dir: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port_file = data_dir / "port.json"
    port_file.unlink(missing_ok=True)
    env = {**os.environ, "ENSEMBLE_DATA_DIR": str(data_dir), "ENSEMBLE_LOG_FORMAT": "json", **env_extra}
    # Logs to a file: a pipe nobody reads could fill and stall the server.
    with open(data_dir / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ensemble.cli", "serve", "--port", "0", "--port-file", str(port_file)],
            env=env,
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {server_log(data_dir)}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("server did not start in 60 s")
        time.sleep(0.05)
    return proc, json.loads(port_file.read_text())["url"]


def server_log(data_dir: Path) -> str:
    return (data_dir / "server.log").read_text()[-3000:]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=15)
    return time.monotonic() - started


@pytest.mark.slow
def test_serve_with_external_database_is_ready_and_stops_on_sigterm(tmp_path: Path, database_url: str) -> None:
    proc, url = start(tmp_path, {"ENSEMBLE_DATABASE_URL": database_url})
    try:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "objects": "ok"}
        missing = httpx.get(f"{url}/no/such/route")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    finally:
        elapsed = stop(proc)
    assert proc.returncode == 0, server_log(tmp_path)
    assert elapsed < 10


@pytest.mark.slow
def test_embedded_defaults_survive_a_restart(tmp_path: Path) -> None:
    """No configuration at all: embedded Postgres in the data directory, kept across restarts."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {"ENSEMBLE_DATABASE_URL": "", "ENSEMBLE_S3_ENDPOINT": ""}
    env = {k: v for k, v in env.items() if v}
    clean = {k: v for k, v in os.environ.items() if k not in ("ENSEMBLE_DATABASE_URL", "ENSEMBLE_S3_ENDPOINT")}
    os_environ = os.environ.copy()
    os.environ.clear()
    os.environ.update(clean)
    try:
        proc, url = start(data_dir, env)
        try:
            assert httpx.get(f"{url}/readyz").status_code == 200
            # Write something through the store the server owns.
            dsn = _embedded_dsn(data_dir)
            _psql(dsn, "INSERT INTO tenants (name, slug) VALUES ('Survivor', 'survivor')")
        finally:
            stop(proc)
        assert proc.returncode == 0, server_log(data_dir)
        # Postgres was stopped with the server.
        assert not (_cluster(data_dir) / "data" / "postmaster.pid").exists()
        proc, url = start(data_dir, env)
        try:
            assert httpx.get(f"{url}/readyz").status_code == 200
            assert _psql(_embedded_dsn(data_dir), "SELECT name FROM tenants WHERE slug = 'survivor'") == "Survivor"
        finally:
            stop(proc)
    finally:
        os.environ.clear()
        os.environ.update(os_environ)


def _cluster(data_dir: Path) -> Path:
    from ensemble.persistence.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(data_dir)
    if os.geteuid() == 0:
        pg._relocate_for(pg._ensure_user())
    return pg.root


def _embedded_dsn(data_dir: Path) -> str:
    pid = (_cluster(data_dir) / "data" / "postmaster.pid").read_text().splitlines()
    password = (data_dir / "postgres-password").read_text().strip()
    return f"postgresql://postgres:{password}@127.0.0.1:{pid[3].strip()}/postgres"


def _psql(dsn: str, sql: str) -> str:
    import asyncio

    import asyncpg

    async def run() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            if sql.lstrip().upper().startswith("SELECT"):
                return str(await conn.fetchval(sql))
            await conn.execute(sql)
            return ""
        finally:
            await conn.close()

    return asyncio.run(run())
