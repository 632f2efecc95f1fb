"""Printer vocabulary shared by hub and dashboard messages.

Names follow the ``printers`` and ``print_jobs`` tables of the product schema
(``status`` values, ``connection_type``, ``serial_number``, ``access_code``).
Two deliberate deviations, written down here so nobody "fixes" them back:

* ``ConnectionType.OPCUA`` is added: Ensemble's hub agent talks OPC UA to its
  devices (see ARCHITECTURE.md), which the original schema predates.
* Printers are reached at an ``address`` (host, ``host:port`` or URL such as
  ``opc.tcp://10.0.0.5:4840``) rather than the schema's ``ip_address``, since an
  OPC UA endpoint is a URL, not an IP.
"""

import dataclasses
import enum
from typing import Annotated

from ._schema import Id, Length, Name

__all__ = [
    "ConfigureAction",
    "ConnectionType",
    "ControlAction",
    "DiscoveredPrinter",
    "JobStatus",
    "PrintAction",
    "PrinterConfig",
    "PrinterInfo",
    "PrinterState",
    "TransferPhase",
]

Address = Annotated[str, Length(1, 512)]


class PrinterState(enum.StrEnum):
    """Normalized printer status; the ``printers.status`` column values."""

    IDLE = "idle"
    PRINTING = "printing"
    PAUSED = "paused"
    ERROR = "error"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"


class JobStatus(enum.StrEnum):
    """The ``print_jobs.status`` column values."""

    QUEUED = "queued"
    UPLOADING = "uploading"  # Ensemble: file on its way to the printer (hub -> printer)
    PROCESSING = "processing"
    UPLOADED = "uploaded"
    PRINTING = "printing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ConnectionType(enum.StrEnum):
    BAMBU = "bambu"
    PRUSA = "prusa"
    OCTOPRINT = "octoprint"
    KLIPPER = "klipper"
    OPCUA = "opcua"
    OTHER = "other"


class PrintAction(enum.StrEnum):
    """``print_command.action``; only ``start`` exists in the document."""

    START = "start"


class ControlAction(enum.StrEnum):
    """``printer_command.action``."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class ConfigureAction(enum.StrEnum):
    """``configure_printer.action``."""

    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"


class TransferPhase(enum.StrEnum):
    """Which leg of the file transfer a ``file_progress`` reports."""

    DOWNLOADING = "downloading"  # object storage -> hub
    UPLOADING = "uploading"  # hub -> printer


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PrinterInfo:
    """A printer the hub manages, as reported in ``hub_hello`` and ``printer_list``."""

    printer_id: Id
    connection_type: ConnectionType
    connected: bool
    name: Name | None = None
    model: Name | None = None
    serial_number: Name | None = None
    firmware_version: Name | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredPrinter:
    """A printer found on the LAN (mDNS/SSDP/OPC UA discovery), not yet configured."""

    connection_type: ConnectionType
    address: Address
    serial_number: Name | None = None
    model: Name | None = None
    name: Name | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PrinterConfig:
    """What the hub needs to reach a printer (``configure_printer.printer``).

    For ``remove`` only ``printer_id`` matters.  ``access_code`` is the printer's
    LAN secret: it is kept out of ``repr`` so it never lands in a log line.
    """

    printer_id: Id
    connection_type: ConnectionType = ConnectionType.BAMBU
    address: Address | None = None
    name: Name | None = None
    model: Name | None = None
    serial_number: Name | None = None
    access_code: Name | None = dataclasses.field(default=None, repr=False)
