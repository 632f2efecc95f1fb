"""CLI commands of the hubs feature: ``hub provision|claim-code``, ``hub-agent``, ``simulate-printer``.

Imported by ``ensemble.commands``; heavy imports stay inside the command
bodies.  ``hub-agent`` and ``simulate-printer`` import nothing of the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from pathlib import Path

from ensemble.cli import _settings, command

__all__: list[str] = []


def _hub_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    prov = sub.add_parser("provision", help="create a hub identity: prints its id and secret once, and a claim code")
    prov.add_argument("--firmware", help="firmware version to record")
    prov.add_argument("--json", action="store_true", help="print JSON instead of text")
    prov.add_argument("--data-dir", type=Path)
    code = sub.add_parser("claim-code", help="issue a fresh claim code for an unclaimed hub")
    code.add_argument("hub_id")
    code.add_argument("--json", action="store_true")
    code.add_argument("--data-dir", type=Path)


@command("hub", "manage hub identities: provision (id + secret, shown once), claim-code", _hub_args)
def _hub(args: argparse.Namespace) -> int:
    import trio

    from ensemble.hubs.protocol import derive_hub_key, generate_hub_credentials
    from ensemble.bridge import open_bridge
    from ensemble.persistence.database import open_database
    from ensemble.persistence.migrate import migrate
    from ensemble.persistence.repos import hubs
    from ensemble.server import resolve_dsn

    settings = _settings(args, data_dir=args.data_dir)
    ttl = settings.hub_claim_code_ttl_s

    async def provision(conn: object) -> dict[str, object]:
        creds = generate_hub_credentials()
        hub_id = uuid.UUID(creds.hub_id)
        async with conn.transaction():  # type: ignore[attr-defined]
            # Only the derived key is stored: it verifies the hub's HMAC
            # hello, and the secret cannot be recovered from it.
            await hubs.provision(conn, hub_id=hub_id, hmac_key=derive_hub_key(creds.hub_id, creds.secret),
                                 firmware_version=args.firmware)
            code, expires = await hubs.issue_claim_code(conn, hub_id, ttl)
        return {"hub_id": creds.hub_id, "secret": creds.secret, "claim_code": code,
                "claim_code_expires_at": expires.isoformat()}

    async def claim_code(conn: object) -> dict[str, object]:
        code, expires = await hubs.issue_claim_code(conn, uuid.UUID(args.hub_id), ttl)
        return {"hub_id": args.hub_id, "claim_code": code, "claim_code_expires_at": expires.isoformat()}

    async def run() -> dict[str, object]:
        async with open_bridge() as bridge, resolve_dsn(settings) as dsn, open_database(bridge, dsn) as db:
            await migrate(db)
            if args.hub_command == "provision":
                return await db.run(provision)
            return await db.run(claim_code)

    result = trio.run(run)
    if args.json:
        print(json.dumps(result))
    elif args.hub_command == "provision":
        print(f"hub id:      {result['hub_id']}")
        print(f"secret:      {result['secret']}")
        print("             (shown once: put it in the agent's secret file; only a derived key is stored)")
        print(f"claim code:  {result['claim_code']}  (valid until {result['claim_code_expires_at']})")
    else:
        print(f"claim code:  {result['claim_code']}  (valid until {result['claim_code_expires_at']})")
    return 0


def _agent_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="the agent's TOML configuration (see docs/hubs.md)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


@command("hub-agent", "run the hub agent: bridge printers (OPC UA) to a gateway", _agent_args)
def _hub_agent(args: argparse.Namespace) -> int:
    from ensemble.hubs.agent.__main__ import main

    return main(["--config", str(args.config), "--log-level", args.log_level])


def _sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1 only)")
    p.add_argument("--port", type=int, default=4840, help="OPC UA port (default 4840)")
    p.add_argument("--print-seconds", type=float, default=60.0, help="how long a print takes (a file may say otherwise)")
    p.add_argument("--heat-seconds", type=float, default=5.0, help="how long heating up takes")
    p.add_argument("--layers", type=int, default=100)
    p.add_argument("--tick", type=float, default=0.1, help="simulation step in seconds")


@command("simulate-printer", "serve a simulated 3D printer over OPC UA (127.0.0.1 by default)", _sim_args)
def _simulate_printer(args: argparse.Namespace) -> int:
    import asyncio

    from ensemble.hubs.simulator import PrinterModel, PrintSettings, serve_simulator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    model = PrinterModel(PrintSettings(print_seconds=args.print_seconds, heat_seconds=args.heat_seconds,
                                       layers=args.layers))

    def ready(endpoint: str) -> None:
        print(f"printer simulator listening on {endpoint}", flush=True)

    try:
        asyncio.run(serve_simulator(model, host=args.host, port=args.port, tick_s=args.tick, ready=ready))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"ensemble simulate-printer: {exc}", file=sys.stderr)
        return 1
    return 0
