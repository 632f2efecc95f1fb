"""Imports the modules that add subcommands to ``ensemble`` (see cli.COMMANDS).

Each module registers with ``@command(...)`` at import; keep the imports here
cheap (heavy libraries are imported inside the command bodies).
"""

from ensemble.hubs import commands as _hub_commands  # noqa: E402,F401 - hub, hub-agent, simulate-printer
from ensemble import knowledge_cli as _knowledge_commands  # noqa: E402,F401 - knowledge ingest/list/delete/samples
