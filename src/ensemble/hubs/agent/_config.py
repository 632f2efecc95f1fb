"""The agent's configuration file (TOML).

::

    [hub]
    id = "7b0f2c3e-..."                 # from `ensemble hub provision`
    secret_file = "hub.secret"          # or: secret = "..." (file wins; relative to this file)
    server = "ws://127.0.0.1:8080"      # the gateway; /api/v1/hubs/connect is added when no path is given
    format = "msgpack"                  # or "json"
    state_dir = "hub-state"             # outbox and command memory (relative to this file)
    firmware = "ensemble-agent/0.1"

    [connection]                        # all optional
    backoff_initial_s = 0.5
    backoff_max_s = 30.0
    connect_timeout_s = 10.0

    [outbox]
    max_events = 10000                  # oldest printer_status dropped first when full; acks never

    [status]
    interval_s = 1.0                    # at most one printer_status per printer per interval...
    keepalive_s = 30.0                  # ...and at least one per keepalive while connected to the printer

    [[printers]]
    printer_id = "5d1c..."              # the printer's id in Ensemble
    connector = "opcua"
    endpoint = "opc.tcp://127.0.0.1:4840/ensemble/printer"
    name = "Bench printer"

      [printers.opcua]                  # optional: the node map (defaults: the simulator's)
      namespace = "urn:ensemble:printer-simulator"
      object = "Printer"
      [printers.opcua.nodes]            # normalized field -> node (string id in namespace, or a full NodeId)
      state = "Printer.State"
      [printers.opcua.methods]          # action -> method node
      pause = "Printer.Pause"
      [printers.opcua.states]           # device state value -> idle|printing|paused|error|offline|maintenance
      "0" = "idle"

Unknown keys are refused, naming the key, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AgentConfig",
    "PrinterConfig",
    "OpcUaNodeMap",
    "load_config",
    "parse_config",
    "DEFAULT_HUB_PATH",
    "ConfigError",
]

DEFAULT_HUB_PATH = "/api/v1/hubs/connect"
NORMALIZED_STATES = ("idle", "printing", "paused", "error", "offline", "maintenance")


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the key."""


@dataclasses.dataclass(frozen=True)
class OpcUaNodeMap:
    namespace: str = "urn:ensemble:printer-simulator"
    object: str = "Printer"
    nodes: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "state": "Printer.State",
            "job_id": "Printer.JobId",
            "progress": "Printer.Progress",
            "remaining_s": "Printer.RemainingTime",
            "layer": "Printer.CurrentLayer",
            "total_layers": "Printer.TotalLayers",
            "nozzle_temp": "Printer.NozzleTemp",
            "nozzle_target": "Printer.NozzleTarget",
            "bed_temp": "Printer.BedTemp",
            "bed_target": "Printer.BedTarget",
            "error_code": "Printer.ErrorCode",
        }
    )
    methods: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "upload_chunk": "Printer.WriteFileChunk",
            "start": "Printer.StartPrint",
            "pause": "Printer.Pause",
            "resume": "Printer.Resume",
            "stop": "Printer.Stop",
        }
    )
    # The simulator's states: 0 idle, 1 heating, 2 printing, 3 paused, 4 finished, 5 error, 6 stopped.
    states: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "0": "idle", "1": "printing", "2": "printing", "3": "paused", "4": "idle", "5": "error", "6": "idle",
        }
    )


@dataclasses.dataclass(frozen=True)
class PrinterConfig:
    printer_id: str
    connector: str
    endpoint: str
    name: str | None = None
    model: str | None = None
    opcua: OpcUaNodeMap = dataclasses.field(default_factory=OpcUaNodeMap)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    hub_id: str
    secret: str
    server: str
    state_dir: Path
    format: str = "msgpack"
    firmware: str = "ensemble-agent/0.1"
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 10.0
    outbox_max_events: int = 10_000
    status_interval_s: float = 1.0
    status_keepalive_s: float = 30.0
    printers: tuple[PrinterConfig, ...] = ()

    @property
    def url(self) -> str:
        """The WebSocket URL of the hub endpoint."""
        parts = urlsplit(self.server)
        path = parts.path if parts.path not in ("", "/") else DEFAULT_HUB_PATH
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    @property
    def http_origin(self) -> str:
        """``http(s)://host:port`` of the gateway, for relative download URLs."""
        parts = urlsplit(self.server)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return f"{scheme}://{parts.netloc}"


def _take(table: dict[str, Any], where: str, spec: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(spec))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(spec))})")
    for key, kind in spec.items():
        if key in table and not isinstance(table[key], kind):
            raise ConfigError(f"{where}.{key}: wrong type {type(table[key]).__name__}")
    return table


def _strings(table: Any, where: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"{where}: must be a table of strings")
    return {str(k): v for k, v in table.items()}


def _printer(raw: Any, index: int) -> PrinterConfig:
    where = f"printers[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _take(raw, where, {"printer_id": str, "connector": str, "endpoint": str, "name": str, "model": str,
                       "opcua": dict})
    for key in ("printer_id", "endpoint"):
        if not raw.get(key):
            raise ConfigError(f"{where}.{key}: required")
    connector = raw.get("connector", "opcua")
    if connector != "opcua":
        raise ConfigError(f"{where}.connector: unknown connector {connector!r} (available: opcua)")
    node_map = OpcUaNodeMap()
    if "opcua" in raw:
        ua = _take(raw["opcua"], f"{where}.opcua",
                   {"namespace": str, "object": str, "nodes": dict, "methods": dict, "states": dict})
        nodes = {**node_map.nodes, **_strings(ua.get("nodes", {}), f"{where}.opcua.nodes")}
        unknown = sorted(set(nodes) - set(node_map.nodes))
        if unknown:
            raise ConfigError(f"{where}.opcua.nodes: unknown field {unknown[0]!r}")
        states = {**node_map.states, **_strings(ua.get("states", {}), f"{where}.opcua.states")}
        bad = sorted(v for v in states.values() if v not in NORMALIZED_STATES)
        if bad:
            raise ConfigError(f"{where}.opcua.states: {bad[0]!r} is not one of {', '.join(NORMALIZED_STATES)}")
        node_map = OpcUaNodeMap(
            namespace=ua.get("namespace", node_map.namespace),
            object=ua.get("object", node_map.object),
            nodes=nodes,
            methods={**node_map.methods, **_strings(ua.get("methods", {}), f"{where}.opcua.methods")},
            states=states,
        )
    return PrinterConfig(printer_id=raw["printer_id"], connector=connector, endpoint=raw["endpoint"],
                         name=raw.get("name"), model=raw.get("model"), opcua=node_map)


def parse_config(data: dict[str, Any], *, base_dir: Path) -> AgentConfig:
    _take(data, "config", {"hub": dict, "connection": dict, "outbox": dict, "status": dict, "printers": list})
    hub = _take(data.get("hub", {}), "hub", {"id": str, "secret": str, "secret_file": str, "server": str,
                                               "format": str, "state_dir": str, "firmware": str})
    for key in ("id", "server"):
        if not hub.get(key):
            raise ConfigError(f"hub.{key}: required")
    secret = hub.get("secret")
    if hub.get("secret_file"):
        path = base_dir / hub["secret_file"]
        try:
            secret = path.read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"hub.secret_file: cannot read {path}: {exc.strerror}") from None
    if not secret:
        raise ConfigError("hub.secret or hub.secret_file: required")
    fmt = hub.get("format", "msgpack")
    if fmt not in ("json", "msgpack"):
        raise ConfigError("hub.format: must be json or msgpack")
    if urlsplit(hub["server"]).scheme not in ("ws", "wss"):
        raise ConfigError("hub.server: must be a ws:// or wss:// URL")
    conn = _take(data.get("connection", {}), "connection",
                 {"backoff_initial_s": (int, float), "backoff_max_s": (int, float), "connect_timeout_s": (int, float)})
    outbox = _take(data.get("outbox", {}), "outbox", {"max_events": int})
    status = _take(data.get("status", {}), "status", {"interval_s": (int, float), "keepalive_s": (int, float)})
    printers = tuple(_printer(p, i) for i, p in enumerate(data.get("printers", [])))
    ids = [p.printer_id for p in printers]
    if len(set(ids)) != len(ids):
        raise ConfigError("printers: two printers share a printer_id")
    config = AgentConfig(
        hub_id=hub["id"],
        secret=secret,
        server=hub["server"],
        state_dir=base_dir / hub.get("state_dir", "hub-state"),
        format=fmt,
        firmware=hub.get("firmware", "ensemble-agent/0.1"),
        backoff_initial_s=float(conn.get("backoff_initial_s", 0.5)),
        backoff_max_s=float(conn.get("backoff_max_s", 30.0)),
        connect_timeout_s=float(conn.get("connect_timeout_s", 10.0)),
        outbox_max_events=int(outbox.get("max_events", 10_000)),
        status_interval_s=float(status.get("interval_s", 1.0)),
        status_keepalive_s=float(status.get("keepalive_s", 30.0)),
        printers=printers,
    )
    if config.backoff_initial_s <= 0 or config.backoff_max_s < config.backoff_initial_s:
        raise ConfigError("connection: need 0 < backoff_initial_s <= backoff_max_s")
    if config.outbox_max_events < 10:
        raise ConfigError("outbox.max_events: at least 10")
    return config


def load_config(path: str | Path) -> AgentConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(data, base_dir=path.parent)
