"""Dashboard socket messages (cloud <-> tenant dashboard).

From "Dashboard WebSocket Protocol" of the product document: ``auth`` /
``auth_success`` / ``auth_error``, ``subscribe`` / ``unsubscribe`` with a
``printers`` list, ``ping``, ``printer_status`` (``progress``,
``remaining_minutes``, ``current_layer``, ``total_layers``), ``job_update``
(``actual_time_minutes``), ``hub_status`` (``is_online``, ``printer_count``).
Defaults where the document is silent:

* ``subscribe``/``unsubscribe`` without ``printers`` mean *all* printers of the
  tenant (the field is omitted, not an empty list: ``[]`` subscribes to none).
* The document's ``inventory_alert`` / ``new_order`` belong to the commerce side
  Ensemble does not have; they become one generic ``alert`` with a ``kind``
  (``hub_offline``, ``printer_error``, ...) and a ``severity``.
* ``snapshot`` carries the full current state (sent after ``auth_success`` and
  as the ``resync`` answer when a client's gap is older than the retained log).
  Its items are the same shapes as the live updates, without ``type``.
* Every server broadcast may carry ``offset``/``epoch`` (ARCHITECTURE.md,
  "Recovery after reconnect"); they are omitted when unset.
* ``ping``/``pong``, ``auth_error`` and ``error`` are the very classes of the hub
  protocol: same shape, one definition.
"""

import dataclasses
import enum
from typing import Annotated, ClassVar, Literal, TypeAlias

from ._messages import AuthError, Celsius, Error, Percent, Ping, Pong
from ._printer import JobStatus, PrinterState
from ._schema import MAX_SAFE_INT, Count, Id, Length, Message, MessageSet, Millis, Name, Range, Text
from ._schema import wire_message as _frozen

__all__ = [
    "DASHBOARD_MESSAGES",
    "FROM_DASHBOARD",
    "TO_DASHBOARD",
    "Alert",
    "AlertSeverity",
    "Auth",
    "AuthSuccess",
    "DashboardMessage",
    "DashboardPrinterStatus",
    "FromDashboard",
    "HubStatus",
    "JobUpdate",
    "Snapshot",
    "Subscribe",
    "ToDashboard",
    "Unsubscribe",
]

Offset = Annotated[int, Range(0, MAX_SAFE_INT)]
Epoch = Annotated[str, Length(1, 64)]
PrinterIds = Annotated[tuple[Id, ...], Length(0, 10_000)]



class AlertSeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# --- dashboard -> cloud -----------------------------------------------------


@_frozen
class Auth(Message):
    type: ClassVar[Literal["auth"]] = "auth"
    token: Annotated[str, Length(1, 8192)] = dataclasses.field(repr=False)


@_frozen
class Subscribe(Message):
    type: ClassVar[Literal["subscribe"]] = "subscribe"
    printers: PrinterIds | None = None  # None: every printer of the tenant


@_frozen
class Unsubscribe(Message):
    type: ClassVar[Literal["unsubscribe"]] = "unsubscribe"
    printers: PrinterIds | None = None  # None: every printer of the tenant


# --- cloud -> dashboard -----------------------------------------------------


@_frozen
class AuthSuccess(Message):
    type: ClassVar[Literal["auth_success"]] = "auth_success"
    user_id: Id
    tenant_id: Id


@_frozen
class DashboardPrinterStatus(Message):
    type: ClassVar[Literal["printer_status"]] = "printer_status"
    printer_id: Id
    status: PrinterState
    hub_id: Id | None = None
    job_id: Id | None = None
    progress: Percent | None = None
    remaining_minutes: Count | None = None
    current_layer: Count | None = None
    total_layers: Count | None = None
    nozzle_temp: Celsius | None = None
    bed_temp: Celsius | None = None
    error_code: Name | None = None
    ts: Millis | None = None
    offset: Offset | None = None
    epoch: Epoch | None = None
    name: Name | None = None  # the printer's display name (snapshot items carry it)


@_frozen
class JobUpdate(Message):
    type: ClassVar[Literal["job_update"]] = "job_update"
    job_id: Id
    status: JobStatus
    printer_id: Id | None = None
    progress: Percent | None = None
    actual_time_minutes: Count | None = None
    failure_reason: Text | None = None
    ts: Millis | None = None
    offset: Offset | None = None
    epoch: Epoch | None = None


@_frozen
class HubStatus(Message):
    type: ClassVar[Literal["hub_status"]] = "hub_status"
    hub_id: Id
    is_online: bool
    printer_count: Count = 0
    name: Name | None = None
    firmware_version: Name | None = None
    last_seen_at: Millis | None = None
    offset: Offset | None = None
    epoch: Epoch | None = None


@_frozen
class Alert(Message):
    type: ClassVar[Literal["alert"]] = "alert"
    alert_id: Id
    kind: Name
    severity: AlertSeverity
    message: Text
    ts: Millis
    printer_id: Id | None = None
    hub_id: Id | None = None
    job_id: Id | None = None
    offset: Offset | None = None
    epoch: Epoch | None = None


@_frozen
class Snapshot(Message):
    type: ClassVar[Literal["snapshot"]] = "snapshot"
    printers: Annotated[tuple[DashboardPrinterStatus, ...], Length(0, 10_000)] = ()
    jobs: Annotated[tuple[JobUpdate, ...], Length(0, 10_000)] = ()
    hubs: Annotated[tuple[HubStatus, ...], Length(0, 10_000)] = ()
    offset: Offset | None = None
    epoch: Epoch | None = None


FromDashboard: TypeAlias = Auth | Subscribe | Unsubscribe | Ping
ToDashboard: TypeAlias = (
    AuthSuccess | AuthError | Pong | DashboardPrinterStatus | JobUpdate | HubStatus | Alert | Snapshot | Error
)
DashboardMessage: TypeAlias = FromDashboard | ToDashboard

FROM_DASHBOARD: MessageSet[FromDashboard] = MessageSet("from_dashboard", Auth, Subscribe, Unsubscribe, Ping)
TO_DASHBOARD: MessageSet[ToDashboard] = MessageSet(
    "to_dashboard",
    AuthSuccess,
    AuthError,
    Pong,
    DashboardPrinterStatus,
    JobUpdate,
    HubStatus,
    Alert,
    Snapshot,
    Error,
)
DASHBOARD_MESSAGES: MessageSet[DashboardMessage] = MessageSet(
    "dashboard", *FROM_DASHBOARD.classes, *TO_DASHBOARD.classes
)
