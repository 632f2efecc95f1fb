"""The ``ensemble`` command.

Subcommands register themselves in :data:`COMMANDS` with a one-line help, so
``ensemble --help`` always lists every command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ensemble.config import Settings, describe_settings, load_settings
from ensemble.errors import ConfigError, EnsembleError
from ensemble.log import configure_logging

__all__ = ["main", "COMMANDS"]

Run = Callable[[argparse.Namespace], int]
AddArguments = Callable[[argparse.ArgumentParser], Any]

# name -> (one-line help, add_arguments, run)
COMMANDS: dict[str, tuple[str, AddArguments, Run]] = {}


def command(name: str, help: str, add_arguments: AddArguments = lambda p: None) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


# -- serve ---------------------------------------------------------------------


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (default ENSEMBLE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default ENSEMBLE_PORT or 8080; 0 = any free port)")
    p.add_argument("--data-dir", type=Path, help="data directory (default ENSEMBLE_DATA_DIR or ./.ensemble)")
    p.add_argument("--port-file", type=Path, help="write {url, port} as JSON here once listening")
    p.add_argument("--demo", action="store_true",
                   help="create the demo tenant, hub, printers and manuals once, print the demo logins "
                        "and run three simulated printers (docs/demo.md)")


@command("serve", "run the server (embedded Postgres and local object store unless configured)", _serve_args)
def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args, host=args.host, port=args.port, data_dir=args.data_dir)
    from ensemble.server import serve

    trio.run(lambda: serve(settings, port_file=args.port_file, demo=args.demo))
    return 0


# -- migrate -------------------------------------------------------------------


@command("migrate", "apply pending database migrations and exit", lambda p: p.add_argument("--data-dir", type=Path))
def _migrate(args: argparse.Namespace) -> int:
    from ensemble.bridge import open_bridge
    from ensemble.persistence.database import open_database
    from ensemble.persistence.migrate import migrate
    from ensemble.server import resolve_dsn

    settings = _settings(args, data_dir=args.data_dir)

    async def run() -> list[int]:
        async with open_bridge() as bridge, resolve_dsn(settings) as dsn, open_database(bridge, dsn) as db:
            return await migrate(db)

    applied = trio.run(run)
    print(f"applied {len(applied)} migration(s): {applied}" if applied else "database is up to date")
    return 0


# -- config --------------------------------------------------------------------


@command(
    "config",
    "print the effective configuration (secrets masked) and exit",
    lambda p: p.add_argument("--markdown", action="store_true", help="print the reference table of every setting"),
)
def _config(args: argparse.Namespace) -> int:
    if args.markdown:
        from ensemble.config import settings_markdown

        print(settings_markdown(), end="")
        return 0
    settings = load_settings()
    print(json.dumps(describe_settings(settings), indent=2))
    return 0


# -- entry point ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # Commands from other packages register on import.
    from ensemble import commands  # noqa: F401

    parser = argparse.ArgumentParser(
        prog="ensemble",
        description="Ensemble: a self-hosted real-time actor server (sessions, hubs, dashboards).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"ensemble: {exc.message}", file=sys.stderr)
        return 2
    except EnsembleError as exc:
        print(f"ensemble: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # ``python -m ensemble.cli``: commands from other modules register on the
    # imported ``ensemble.cli``, not on this ``__main__`` copy; run that one.
    from ensemble.cli import main as _main

    sys.exit(_main())
