"""Imports the modules that add subcommands to ``ensemble`` (see cli.COMMANDS).

Each module registers with ``@command(...)`` at import; keep the imports here
cheap (heavy libraries are imported inside the command bodies).
"""
