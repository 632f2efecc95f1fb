"""Sans-IO hub <-> cloud and dashboard protocol: messages, codec, handshake, de-duplication.

Shared by the server (``gateway``, ``actors``) and the edge agent
(``hubs.agent``).  Nothing here does I/O or reads a clock: no trio, asyncio or
sockets; time is passed in.  Typical use::

    msg = decode(frame, "json", accept=FROM_HUB)       # server receiving
    frame = encode(HubWelcome(...), "msgpack")         # bytes for a binary frame

Wire format in one paragraph: a frame is one object ``{"type": ..., fields}``
as JSON text or msgpack binary; ``None`` optionals are omitted; times are Unix
milliseconds (the hello's signed ``timestamp`` is seconds); integers stay below
2**53 for JavaScript; unknown fields are ignored, everything else that does not
match is ``InvalidInput`` naming the field, and frames over ``max_size``
(64 KiB by default) are ``PayloadTooLarge``.  Details live in the docstrings of
``_messages`` (hub defaults), ``_dashboard``, ``_codec``, ``_handshake`` and
``_dedup``.
"""

from ._codec import DEFAULT_MAX_SIZE, FORMATS, Format, Frame, decode, encode, from_wire, to_wire
from ._dashboard import (
    DASHBOARD_MESSAGES,
    FROM_DASHBOARD,
    TO_DASHBOARD,
    Alert,
    AlertSeverity,
    Auth,
    AuthSuccess,
    DashboardMessage,
    DashboardPrinterStatus,
    FromDashboard,
    HubStatus,
    JobUpdate,
    Snapshot,
    Subscribe,
    ToDashboard,
    Unsubscribe,
)
from ._dedup import CommandDeduplicator, SeqDeduplicator, SeqStatistics
from ._handshake import (
    HandshakeStatistics,
    HandshakeVerifier,
    HubCredentials,
    canonical_hello,
    derive_hub_key,
    generate_hub_credentials,
    new_nonce,
    sign_hello,
    sign_hello_with_key,
)
from ._messages import (
    FROM_HUB,
    HUB_MESSAGES,
    PROTOCOL_VERSION,
    TO_HUB,
    AuthError,
    CommandAck,
    ConfigurePrinter,
    Disconnect,
    DiscoverPrinters,
    Error,
    FileProgress,
    FromHub,
    Heartbeat,
    HubHello,
    HubMessage,
    HubWelcome,
    Ping,
    Pong,
    PrintCommand,
    PrinterCommand,
    PrinterConnected,
    PrinterDisconnected,
    PrinterDiscovered,
    PrinterList,
    PrinterStatus,
    SeqAck,
    ToHub,
)
from ._printer import (
    ConfigureAction,
    ConnectionType,
    ControlAction,
    DiscoveredPrinter,
    JobStatus,
    PrintAction,
    PrinterConfig,
    PrinterInfo,
    PrinterState,
    TransferPhase,
)
from ._schema import Message, MessageSet

__all__ = [
    # codec
    "DEFAULT_MAX_SIZE",
    "FORMATS",
    "Format",
    "Frame",
    "decode",
    "encode",
    "from_wire",
    "to_wire",
    "Message",
    "MessageSet",
    # hub <-> cloud
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
    # printers
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
    # dashboard
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
    # handshake
    "HandshakeStatistics",
    "HandshakeVerifier",
    "HubCredentials",
    "canonical_hello",
    "derive_hub_key",
    "generate_hub_credentials",
    "new_nonce",
    "sign_hello",
    "sign_hello_with_key",
    # de-duplication
    "CommandDeduplicator",
    "SeqDeduplicator",
    "SeqStatistics",
]
