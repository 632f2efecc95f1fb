"""The protocol between the agent and a printer: the Connector interface.

A connector bridges one device.  The agent asks it for three things and
expects one thing back:

* ``run(sink)`` — connect, keep connected (reconnecting on its own), and
  report through ``sink``: ``sink.connected(printer_id, up)`` and
  ``sink.update(printer_id, fields)`` with *normalized* fields (the
  ``printer_status`` vocabulary: ``status`` one of idle/printing/paused/
  error/offline/maintenance, ``job_id``, ``progress`` 0-100, ``remaining_s``,
  ``layer``, ``total_layers``, ``nozzle_temp``/``nozzle_target``,
  ``bed_temp``/``bed_target`` in °C, ``error_code``).  Only changed fields
  need to be sent; the agent keeps the whole picture and throttles.
* ``upload(file_name, data, progress)`` — put a print file on the device,
  calling ``progress(sent, total)`` as it goes.
* ``start_print(job_id, file_name)`` and ``control(action, job_id)``
  (``pause``/``resume``/``stop``) — run a command once.

A refusal by the device is a :class:`CommandFailed` (its message goes to the
cloud in the ``command_ack``); any other exception counts as a failure too.

Adding a connector for another kind of device (MQTT for Bambu, HTTP for
PrusaLink, ...) is: subclass :class:`Connector`, implement these methods,
and add a name for it in ``_config.py`` and ``make_connector``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Protocol

import trio

from ensemble.hubs.protocol import ConnectionType, PrinterInfo

__all__ = ["Connector", "PrinterSink", "CommandFailed", "Progress"]

Progress = Callable[[int, int], None]


class CommandFailed(Exception):
    """The device refused or could not run a command."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PrinterSink(Protocol):
    def connected(self, printer_id: str, up: bool) -> None: ...

    def update(self, printer_id: str, fields: dict[str, Any]) -> None: ...


class Connector(abc.ABC):
    printer_id: str
    name: str | None = None
    model: str | None = None
    connection_type: ConnectionType = ConnectionType.OTHER

    @abc.abstractmethod
    async def run(self, sink: PrinterSink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forever: connect, report, reconnect.  ``task_status.started()`` after the first attempt."""

    @abc.abstractmethod
    async def upload(self, file_name: str, data: bytes, progress: Progress) -> None: ...

    @abc.abstractmethod
    async def start_print(self, job_id: str, file_name: str) -> None: ...

    @abc.abstractmethod
    async def control(self, action: str, job_id: str | None) -> None: ...

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    def info(self) -> PrinterInfo:
        return PrinterInfo(
            printer_id=self.printer_id, connection_type=self.connection_type, connected=self.is_connected,
            name=self.name, model=self.model,
        )
