"""Hub <-> cloud messages.

Type strings and field names come from "Message Protocol (Hub <-> Cloud)" of
the product document where it has them (``hub_hello``, ``firmware``,
``printer_status``, ``file_progress`` with ``bytes_sent``/``bytes_total``,
``command_ack`` with ``success``, ``printer_discovered``, ``configure_printer``,
``print_command``, ``printer_command``, ``discover_printers``).  Where it is
silent, these defaults hold:

* **Authentication rides in ``hub_hello``** (``timestamp``, ``nonce``,
  ``signature``; see ``_handshake``): one round trip, and the server looks at
  nothing else in the hello until the signature verifies.  The cloud answers
  ``hub_welcome`` or ``auth_error`` and then closes.
* **``seq``** tags every hub -> cloud *event* (status, connect/disconnect,
  lists, acks, progress) so the cloud can drop store-and-forward replays.  It
  is a per-hub counter that the agent persists with its outbox and increments
  by one per event.  ``hub_hello.stream_id`` names that counter: a hub that lost
  it (reflash) picks a new ``stream_id`` and the cloud restarts de-duplication.
  Hellos, heartbeats and pings are not replayed and carry no ``seq``.
* **``seq_ack``** (cloud -> hub) says every event up to ``seq`` is durable in
  the cloud, so the hub may drop it from its outbox; ``hub_welcome.last_seq``
  says the same at connect time (-1: nothing yet).
* **``command_id``** is on every cloud -> hub command; the hub runs a command at
  most once and answers one ``command_ack`` with the *outcome* (for
  ``print_command``: the printer accepted the job; transfer progress travels
  as ``file_progress`` meanwhile).  ``success: false`` requires ``error``.
* **Times**: ``ts``, ``server_time`` and ``url_expires_at`` are Unix
  milliseconds; ``hub_hello.timestamp`` alone is Unix seconds because it is
  part of the signed canonical string.  Temperatures are degrees Celsius.
* ``printer_status`` is flat and normalized (the document's opaque
  ``status: {...}`` object is what the agent normalizes *from*).  Everything
  but ``printer_id``, ``status`` and ``ts`` is optional: not every printer
  reports layers or temperatures.
* ``ping``/``pong`` work in both directions; ``pong.ts`` echoes ``ping.ts`` so
  the sender measures the round trip.  ``heartbeat`` is the hub's periodic
  health report (the ``hubs`` table columns), sent every
  ``hub_welcome.heartbeat_s``.
* Unknown fields are ignored on decode so a newer firmware can add fields
  without being dropped by an older server; unknown *types* are refused.
"""

import dataclasses
from typing import Annotated, ClassVar, Literal, TypeAlias

from ._printer import (
    ConfigureAction,
    ControlAction,
    DiscoveredPrinter,
    PrintAction,
    PrinterConfig,
    PrinterInfo,
    PrinterState,
    TransferPhase,
)
from ._schema import (
    MAX_SAFE_INT,
    Count,
    FieldError,
    Id,
    Length,
    Message,
    MessageSet,
    Millis,
    Name,
    Pattern,
    Range,
    Seq,
    Text,
    wire_message as _frozen,
)

__all__ = [
    "FROM_HUB",
    "HUB_MESSAGES",
    "PROTOCOL_VERSION",
    "TO_HUB",
    "AuthError",
    "CommandAck",
    "ConfigurePrinter",
    "Disconnect",
    "DiscoverPrinters",
    "Error",
    "FileProgress",
    "FromHub",
    "Heartbeat",
    "HubHello",
    "HubMessage",
    "HubWelcome",
    "Ping",
    "Pong",
    "PrintCommand",
    "PrinterCommand",
    "PrinterConnected",
    "PrinterDisconnected",
    "PrinterDiscovered",
    "PrinterList",
    "PrinterStatus",
    "SeqAck",
    "ToHub",
]

PROTOCOL_VERSION = 1

# These three go into the signed canonical string; the character sets keep the
# "\n" separator unambiguous (see _handshake).
HUB_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
NONCE_PATTERN = r"[A-Za-z0-9_-]{16,128}"
SIGNATURE_PATTERN = r"[0-9a-f]{64}"

HubId = Annotated[str, Pattern(HUB_ID_PATTERN, "1-128 characters of A-Z a-z 0-9 . _ : -")]
Nonce = Annotated[str, Pattern(NONCE_PATTERN, "16-128 characters of A-Z a-z 0-9 _ -")]
Signature = Annotated[str, Pattern(SIGNATURE_PATTERN, "64 lowercase hex digits")]
Sha256 = Annotated[str, Pattern(r"[0-9a-f]{64}", "64 lowercase hex digits")]
Version = Annotated[str, Length(1, 64)]
UnixSeconds = Annotated[int, Range(0, MAX_SAFE_INT)]
Percent = Annotated[int, Range(0, 100)]
Celsius = Annotated[float, Range(-50, 600)]
Url = Annotated[str, Length(1, 4096)]
Capability = Annotated[str, Length(1, 64)]
Printers = Annotated[tuple[PrinterInfo, ...], Length(0, 256)]



# --- both directions --------------------------------------------------------


@_frozen
class Ping(Message):
    type: ClassVar[Literal["ping"]] = "ping"
    ts: Millis | None = None


@_frozen
class Pong(Message):
    type: ClassVar[Literal["pong"]] = "pong"
    ts: Millis | None = None  # echoes the ping's ts


# --- hub -> cloud -------------------------------------------------------------


@_frozen
class HubHello(Message):
    type: ClassVar[Literal["hub_hello"]] = "hub_hello"
    hub_id: HubId
    firmware: Version
    timestamp: UnixSeconds
    nonce: Nonce
    signature: Signature
    stream_id: Id
    protocol: Annotated[int, Range(1, 65535)] = PROTOCOL_VERSION
    capabilities: Annotated[tuple[Capability, ...], Length(0, 64)] = ()
    printers: Printers = ()
    hardware_revision: Name | None = None
    local_ip: Name | None = None


@_frozen
class Heartbeat(Message):
    type: ClassVar[Literal["heartbeat"]] = "heartbeat"
    ts: Millis
    uptime_s: Count
    backlog: Count = 0  # events waiting in the store-and-forward outbox
    wifi_rssi: Annotated[int, Range(-127, 0)] | None = None
    local_ip: Name | None = None


@_frozen
class PrinterStatus(Message):
    type: ClassVar[Literal["printer_status"]] = "printer_status"
    seq: Seq
    printer_id: Id
    status: PrinterState
    ts: Millis
    job_id: Id | None = None
    progress: Percent | None = None
    remaining_s: Count | None = None
    layer: Count | None = None
    total_layers: Count | None = None
    nozzle_temp: Celsius | None = None
    nozzle_target: Celsius | None = None
    bed_temp: Celsius | None = None
    bed_target: Celsius | None = None
    error_code: Name | None = None


@_frozen
class PrinterConnected(Message):
    type: ClassVar[Literal["printer_connected"]] = "printer_connected"
    seq: Seq
    printer_id: Id
    ts: Millis


@_frozen
class PrinterDisconnected(Message):
    type: ClassVar[Literal["printer_disconnected"]] = "printer_disconnected"
    seq: Seq
    printer_id: Id
    ts: Millis
    reason: Text | None = None


@_frozen
class PrinterList(Message):
    """The full set of printers the hub manages, after any change."""

    type: ClassVar[Literal["printer_list"]] = "printer_list"
    seq: Seq
    printers: Printers
    ts: Millis


@_frozen
class PrinterDiscovered(Message):
    type: ClassVar[Literal["printer_discovered"]] = "printer_discovered"
    seq: Seq
    printers: Annotated[tuple[DiscoveredPrinter, ...], Length(0, 256)]
    ts: Millis
    command_id: Id | None = None  # set when answering discover_printers


@_frozen
class CommandAck(Message):
    type: ClassVar[Literal["command_ack"]] = "command_ack"
    seq: Seq
    command_id: Id
    success: bool
    ts: Millis
    error: Text | None = None
    error_code: Name | None = None

    def _check(self) -> None:
        if not self.success and self.error is None:
            raise FieldError("required when success is false", "error")


@_frozen
class FileProgress(Message):
    type: ClassVar[Literal["file_progress"]] = "file_progress"
    seq: Seq
    job_id: Id
    printer_id: Id
    phase: TransferPhase
    bytes_sent: Count
    bytes_total: Count
    ts: Millis
    command_id: Id | None = None

    def _check(self) -> None:
        if self.bytes_sent > self.bytes_total:
            raise FieldError("must be <= bytes_total", "bytes_sent")


# --- cloud -> hub -------------------------------------------------------------


@_frozen
class HubWelcome(Message):
    type: ClassVar[Literal["hub_welcome"]] = "hub_welcome"
    hub_id: HubId
    server_time: Millis
    last_seq: Annotated[int, Range(-1, MAX_SAFE_INT)] = -1
    heartbeat_s: Annotated[int, Range(1, 3600)] = 30
    claimed: bool = False  # unclaimed hubs report but are sent no commands
    # Unclaimed hubs only: the short-lived code a tenant admin types to claim
    # this hub (shown on the hub's display or log), and when it stops working.
    claim_code: Annotated[str, Length(1, 32)] | None = None
    claim_code_expires_at: Millis | None = None


@_frozen
class AuthError(Message):
    type: ClassVar[Literal["auth_error"]] = "auth_error"
    message: Text


@_frozen
class SeqAck(Message):
    type: ClassVar[Literal["seq_ack"]] = "seq_ack"
    seq: Annotated[int, Range(-1, MAX_SAFE_INT)]


@_frozen
class PrintCommand(Message):
    type: ClassVar[Literal["print_command"]] = "print_command"
    command_id: Id
    printer_id: Id
    job_id: Id
    file_url: Url  # presigned GET; the hub sends no credentials with it
    file_name: Name
    file_size: Count
    sha256: Sha256
    action: PrintAction = PrintAction.START
    url_expires_at: Millis | None = None


@_frozen
class PrinterCommand(Message):
    type: ClassVar[Literal["printer_command"]] = "printer_command"
    command_id: Id
    printer_id: Id
    action: ControlAction
    job_id: Id | None = None  # when set, the hub refuses if another job runs


@_frozen
class ConfigurePrinter(Message):
    type: ClassVar[Literal["configure_printer"]] = "configure_printer"
    command_id: Id
    action: ConfigureAction
    printer: PrinterConfig


@_frozen
class DiscoverPrinters(Message):
    type: ClassVar[Literal["discover_printers"]] = "discover_printers"
    command_id: Id


@_frozen
class Disconnect(Message):
    """The cloud is about to close; ``retry_after_s`` None means normal backoff."""

    type: ClassVar[Literal["disconnect"]] = "disconnect"
    code: Name
    message: Text = ""
    retry_after_s: Annotated[int, Range(0, 86400)] | None = None


@_frozen
class Error(Message):
    """A message was refused; ``code`` is the ``EnsembleError.code``."""

    type: ClassVar[Literal["error"]] = "error"
    code: Name
    message: Text = ""


FromHub: TypeAlias = (
    HubHello
    | Heartbeat
    | Ping
    | Pong
    | PrinterStatus
    | PrinterConnected
    | PrinterDisconnected
    | PrinterList
    | PrinterDiscovered
    | CommandAck
    | FileProgress
)
ToHub: TypeAlias = (
    HubWelcome
    | AuthError
    | Ping
    | Pong
    | SeqAck
    | PrintCommand
    | PrinterCommand
    | ConfigurePrinter
    | DiscoverPrinters
    | Disconnect
    | Error
)
HubMessage: TypeAlias = FromHub | ToHub

FROM_HUB: MessageSet[FromHub] = MessageSet(
    "from_hub",
    HubHello,
    Heartbeat,
    Ping,
    Pong,
    PrinterStatus,
    PrinterConnected,
    PrinterDisconnected,
    PrinterList,
    PrinterDiscovered,
    CommandAck,
    FileProgress,
)
TO_HUB: MessageSet[ToHub] = MessageSet(
    "to_hub",
    HubWelcome,
    AuthError,
    Ping,
    Pong,
    SeqAck,
    PrintCommand,
    PrinterCommand,
    ConfigurePrinter,
    DiscoverPrinters,
    Disconnect,
    Error,
)
HUB_MESSAGES: MessageSet[HubMessage] = MessageSet(
    "hub",
    *FROM_HUB.classes,
    *(c for c in TO_HUB.classes if c not in FROM_HUB.classes),
)
