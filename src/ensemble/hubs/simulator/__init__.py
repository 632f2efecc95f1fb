"""A simulated 3D printer served over OPC UA, for tests, demos and benchmarks.

Run it with ``ensemble simulate-printer`` (listens on 127.0.0.1:4840 by
default); in-process, use :class:`SimulatorThread`.
"""

from ensemble.hubs.simulator._model import (
    ERROR,
    FINISHED,
    HEATING,
    IDLE,
    PAUSED,
    PRINTING,
    STATE_NAMES,
    STOPPED,
    PrinterModel,
    PrintSettings,
    SimulatorError,
)
from ensemble.hubs.simulator._server import NAMESPACE, SimulatorThread, free_port, serve_simulator

__all__ = [
    "ERROR",
    "FINISHED",
    "HEATING",
    "IDLE",
    "NAMESPACE",
    "PAUSED",
    "PRINTING",
    "STATE_NAMES",
    "STOPPED",
    "PrintSettings",
    "PrinterModel",
    "SimulatorError",
    "SimulatorThread",
    "free_port",
    "serve_simulator",
]
