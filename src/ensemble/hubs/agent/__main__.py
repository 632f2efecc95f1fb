"""``python -m ensemble.hubs.agent --config hub.toml``: the agent without the server's CLI."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from ensemble.hubs.agent import ConfigError, HubAgent, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ensemble-hub-agent", description="Bridge printers to an Ensemble gateway.")
    parser.add_argument("--config", required=True, help="the agent's TOML configuration file")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # per-connection chatter about security policies
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"ensemble-hub-agent: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(HubAgent(config).run)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
