"""The commands as an operator runs them: `ensemble hub provision`, `simulate-printer`, `hub-agent`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ensemble.hubs.protocol import derive_hub_key
from ensemble.hubs.simulator import free_port
from tests.hubs._helpers import Gateway, add_printer, open_dashboard, signup


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "ENSEMBLE_DATABASE_URL": database_url, "ENSEMBLE_DATA_DIR": str(data_dir),
            "ENSEMBLE_LOG_LEVEL": "warning"}


@asynccontextmanager
async def process(args: list[str], *, env: dict[str, str] | None = None, ready: str,
                  timeout: float = 30.0) -> AsyncIterator[trio.Process]:
    """Start ``python -m ensemble.cli ...`` and wait for ``ready`` in its output."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "ensemble.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    assert proc.stdout is not None
    seen = b""
    try:
        with trio.fail_after(timeout):
            while ready.encode() not in seen:
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    raise AssertionError(f"{args[0]} exited: {seen.decode(errors='replace')}")
                seen += chunk
        yield proc
    finally:
        proc.terminate()
        with trio.move_on_after(10):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.stdout.aclose()


async def test_provision_simulate_and_run_the_agent_from_the_command_line(
    gateway: Gateway, database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path / "cli-data")
    result = await trio.run_process(
        [sys.executable, "-m", "ensemble.cli", "hub", "provision", "--json"], capture_stdout=True, capture_stderr=True,
        env=env,
    )
    provisioned = json.loads(result.stdout)
    hub_id, secret = provisioned["hub_id"], provisioned["secret"]
    # Only a key derived from the secret is stored.
    stored = await gateway.services.db.run(
        lambda conn: conn.fetchval("SELECT hmac_key FROM hubs WHERE id = $1", uuid.UUID(hub_id)))
    assert bytes(stored) == derive_hub_key(hub_id, secret) and secret.encode() not in bytes(stored)

    async with gateway.client() as http:
        owner = await signup(http)
        r = await owner.post("/api/v1/hubs/claim", json={"claim_code": provisioned["claim_code"], "name": "CLI hub"})
        assert r.status_code == 201, r.text
        printer = await add_printer(owner, hub_id, "CLI printer")
        port = free_port()
        (tmp_path / "hub.secret").write_text(secret + "\n")
        config = tmp_path / "hub.toml"
        config.write_text(textwrap.dedent(f"""
            [hub]
            id = "{hub_id}"
            secret_file = "hub.secret"
            server = "{gateway.ws}"
            format = "json"
            state_dir = "hub-state"

            [connection]
            backoff_initial_s = 0.2
            backoff_max_s = 1.0

            [status]
            interval_s = 0.5

            [[printers]]
            printer_id = "{printer['id']}"
            endpoint = "opc.tcp://127.0.0.1:{port}/ensemble/printer"
        """))
        async with process(["simulate-printer", "--port", str(port), "--print-seconds", "2"], env=env,
                           ready="printer simulator listening on opc.tcp://127.0.0.1:"), \
                open_dashboard(gateway, owner.access_token) as board, \
                process(["hub-agent", "--config", str(config)], env=env, ready="connected to"):
            await board.wait_for(lambda b: b.printers.get(printer["id"], {}).get("status") == "idle", timeout=20)
            await board.wait_for(lambda b: b.hubs.get(hub_id, {}).get("is_online") is True)
            assert (tmp_path / "hub-state" / "outbox.sqlite3").exists()  # state_dir is relative to the config
