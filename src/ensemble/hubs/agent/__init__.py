"""The hub agent: the edge process between printers and the Ensemble gateway.

It imports nothing from the server: only ``ensemble.hubs.protocol`` (shared
with the server), trio, trio-websocket, asyncua, msgpack and the standard
library.  Run it with ``ensemble hub-agent --config hub.toml`` (or
``python -m ensemble.hubs.agent --config hub.toml``); the configuration
format is documented in ``_config.py`` and docs/hubs.md.
"""

from ensemble.hubs.agent._agent import AuthRefused, HubAgent, make_connectors
from ensemble.hubs.agent._config import AgentConfig, ConfigError, OpcUaNodeMap, PrinterConfig, load_config, parse_config
from ensemble.hubs.agent._connector import CommandFailed, Connector, PrinterSink
from ensemble.hubs.agent._opcua import OpcUaConnector
from ensemble.hubs.agent._outbox import Outbox

__all__ = [
    "AgentConfig",
    "AuthRefused",
    "CommandFailed",
    "ConfigError",
    "Connector",
    "HubAgent",
    "OpcUaConnector",
    "OpcUaNodeMap",
    "Outbox",
    "PrinterConfig",
    "PrinterSink",
    "load_config",
    "make_connectors",
    "parse_config",
]
