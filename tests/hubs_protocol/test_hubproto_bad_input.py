"""Bad frames, as a table: each must raise exactly one exception class whose
message starts with the path of the offending field."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from ensemble.errors import EnsembleError, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ensemble.hubs.protocol import (
    DEFAULT_MAX_SIZE,
    FROM_DASHBOARD,
    FROM_HUB,
    TO_HUB,
    CommandAck,
    ConnectionType,
    FileProgress,
    HubHello,
    Message,
    MessageSet,
    PrinterInfo,
    PrinterList,
    PrinterState,
    PrinterStatus,
    TransferPhase,
    decode,
    encode,
)

STATUS: dict[str, Any] = {"type": "printer_status", "seq": 1, "printer_id": "p1", "status": "idle", "ts": 1}
HELLO: dict[str, Any] = {
    "type": "hub_hello",
    "hub_id": "hub-1",
    "firmware": "1.0.0",
    "timestamp": 1700000000,
    "nonce": "0123456789abcdef",
    "signature": "ab" * 32,
    "stream_id": "s1",
    "printers": [
        {"printer_id": "p1", "connection_type": "bambu", "connected": True},
        {"printer_id": "p2", "connection_type": "bambu", "connected": False},
    ],
}
PRINT: dict[str, Any] = {
    "type": "print_command",
    "command_id": "c1",
    "printer_id": "p1",
    "job_id": "j1",
    "file_url": "https://x/y",
    "file_name": "m.3mf",
    "file_size": 10,
    "sha256": "0f" * 32,
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is DROP:
            del out[key]
        else:
            out[key] = value
    return out


def nested(base: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    printers = [dict(p) for p in base["printers"]]
    printers[index] = with_(printers[index], **changes)
    return with_(base, printers=printers)


DROP = object()

# (envelope, expected prefix of the message, accept) -- run through both formats.
FIELD_ROWS: list[tuple[Any, str, MessageSet[Message]]] = [
    ([STATUS], "frame", FROM_HUB),
    ("printer_status", "frame", FROM_HUB),
    (with_(STATUS, type=DROP), "type", FROM_HUB),
    (with_(STATUS, type=None), "type", FROM_HUB),
    (with_(STATUS, type=5), "type", FROM_HUB),
    (with_(STATUS, type="teleport"), "type", FROM_HUB),
    # A real message in the wrong direction is as unknown as a made-up one.
    (PRINT, "type", FROM_HUB),
    (STATUS, "type", TO_HUB),
    ({"type": "auth_success", "user_id": "u", "tenant_id": "t"}, "type", FROM_DASHBOARD),
    # missing
    (with_(STATUS, printer_id=DROP), "printer_status.printer_id", FROM_HUB),
    (with_(STATUS, seq=DROP), "printer_status.seq", FROM_HUB),
    (nested(HELLO, 1, connected=DROP), "hub_hello.printers[1].connected", FROM_HUB),
    ({"type": "configure_printer", "command_id": "c", "action": "add"}, "configure_printer.printer", TO_HUB),
    # wrong type
    (with_(STATUS, progress="45"), "printer_status.progress", FROM_HUB),
    (with_(STATUS, progress=45.0), "printer_status.progress", FROM_HUB),
    (with_(STATUS, seq=True), "printer_status.seq", FROM_HUB),
    (with_(STATUS, printer_id=7), "printer_status.printer_id", FROM_HUB),
    (with_(STATUS, printer_id=None), "printer_status.printer_id", FROM_HUB),
    (with_(STATUS, nozzle_temp="hot"), "printer_status.nozzle_temp", FROM_HUB),
    (with_(STATUS, nozzle_temp=True), "printer_status.nozzle_temp", FROM_HUB),
    (with_(STATUS, status="exploded"), "printer_status.status", FROM_HUB),
    (with_(STATUS, status=["idle"]), "printer_status.status", FROM_HUB),
    (with_(HELLO, printers={"p1": {}}), "hub_hello.printers", FROM_HUB),
    (with_(HELLO, printers=["p1"]), "hub_hello.printers[0]", FROM_HUB),
    (with_(HELLO, capabilities=["ok", 3]), "hub_hello.capabilities[1]", FROM_HUB),
    (nested(HELLO, 0, connected="yes"), "hub_hello.printers[0].connected", FROM_HUB),
    (nested(HELLO, 1, connection_type="serial"), "hub_hello.printers[1].connection_type", FROM_HUB),
    (
        {"type": "command_ack", "seq": 1, "command_id": "c", "success": 1, "ts": 1},
        "command_ack.success",
        FROM_HUB,
    ),
    ({"type": "subscribe", "printers": "p1"}, "subscribe.printers", FROM_DASHBOARD),
    # out of range / malformed
    (with_(STATUS, progress=101), "printer_status.progress", FROM_HUB),
    (with_(STATUS, progress=-1), "printer_status.progress", FROM_HUB),
    (with_(STATUS, seq=-1), "printer_status.seq", FROM_HUB),
    (with_(STATUS, seq=2**53), "printer_status.seq", FROM_HUB),
    (with_(STATUS, ts=2**64 - 1), "printer_status.ts", FROM_HUB),
    (with_(STATUS, nozzle_temp=1000.0), "printer_status.nozzle_temp", FROM_HUB),
    (with_(STATUS, printer_id=""), "printer_status.printer_id", FROM_HUB),
    (with_(STATUS, printer_id="p" * 129), "printer_status.printer_id", FROM_HUB),
    (with_(HELLO, hub_id="hub\n1"), "hub_hello.hub_id", FROM_HUB),
    (with_(HELLO, nonce="short"), "hub_hello.nonce", FROM_HUB),
    (with_(HELLO, signature="AB" * 32), "hub_hello.signature", FROM_HUB),
    (with_(HELLO, printers=[HELLO["printers"][0]] * 257), "hub_hello.printers", FROM_HUB),
    (nested(HELLO, 1, printer_id=""), "hub_hello.printers[1].printer_id", FROM_HUB),
    (
        {"type": "heartbeat", "ts": 1, "uptime_s": 1, "wifi_rssi": 5},
        "heartbeat.wifi_rssi",
        FROM_HUB,
    ),
    ({"type": "hub_welcome", "hub_id": "h", "server_time": 1, "heartbeat_s": 0}, "hub_welcome.heartbeat_s", TO_HUB),
    (with_(PRINT, sha256="0F" * 32), "print_command.sha256", TO_HUB),
    (with_(PRINT, file_url=""), "print_command.file_url", TO_HUB),
    ({"type": "auth", "token": ""}, "auth.token", FROM_DASHBOARD),
    # cross-field rules
    (
        {"type": "command_ack", "seq": 1, "command_id": "c", "success": False, "ts": 1},
        "command_ack.error",
        FROM_HUB,
    ),
    (
        {
            "type": "file_progress",
            "seq": 1,
            "job_id": "j",
            "printer_id": "p",
            "phase": "downloading",
            "bytes_sent": 6,
            "bytes_total": 5,
            "ts": 1,
        },
        "file_progress.bytes_sent",
        FROM_HUB,
    ),
]


def _field_of(prefix: str) -> str:
    return prefix.partition(".")[2] if "." in prefix else ("" if prefix == "frame" else prefix)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize(("envelope", "prefix", "accept"), FIELD_ROWS, ids=[r[1] for r in FIELD_ROWS])
def test_bad_envelope(envelope: Any, prefix: str, accept: MessageSet[Message], fmt: str) -> None:
    if fmt == "json":
        frame: str | bytes = json.dumps(envelope)
    else:
        frame = msgpack.packb(envelope, use_bin_type=True)
    with pytest.raises(EnsembleError) as info:
        decode(frame, fmt, accept=accept)
    assert type(info.value) is InvalidInput
    assert str(info.value).startswith(prefix + ":"), str(info.value)
    assert info.value.details["field"] == _field_of(prefix)


GOOD = json.dumps(STATUS)

# (frame, fmt) that fail before any field is looked at.
FRAME_ROWS: list[tuple[Any, str, str]] = [
    ("{", "json", "not valid JSON"),
    ("", "json", "not valid JSON"),
    (GOOD + " x", "json", "not valid JSON"),
    (GOOD.replace('"ts": 1', '"ts": 1, "bed_temp": NaN'), "json", "NaN"),
    (GOOD.replace('"ts": 1', '"ts": 1, "bed_temp": Infinity'), "json", "Infinity"),
    (b'{"type": "ping", "x": "\xff"}', "json", "UTF-8"),
    ("[" * 100_000 + "]" * 100_000, "json", "not valid JSON"),
    (b"\xc1", "msgpack", "not valid msgpack"),
    (b"", "msgpack", "not valid msgpack"),
    (msgpack.packb(STATUS) + b"\x00", "msgpack", "not valid msgpack"),
    (b"\x81\xa4type\xa4pi", "msgpack", "not valid msgpack"),
    (b"\x81\xa4type\xc4\x04ping", "msgpack", "type: must be a string"),
    (b"\x81\x01\xa4ping", "msgpack", "not valid msgpack"),  # int map key
    (b"\x81\xa4type\xa2\xff\xfe", "msgpack", "not valid msgpack"),  # invalid UTF-8 str
    (GOOD, "msgpack", "msgpack frames must be binary"),
]


@pytest.mark.parametrize(("frame", "fmt", "says"), FRAME_ROWS, ids=[r[2] for r in FRAME_ROWS])
def test_bad_frame(frame: Any, fmt: str, says: str) -> None:
    with pytest.raises(EnsembleError) as info:
        decode(frame, fmt, max_size=1 << 20)
    assert type(info.value) is InvalidInput
    assert says in str(info.value)
    assert str(info.value).startswith(("frame:", "type:"))


def test_lone_surrogate_is_refused_by_field() -> None:
    # Legal JSON escape, but no UTF-8 socket or msgpack packer could send it on.
    frame = json.dumps(with_(STATUS, error_code="\ud800"))
    assert "\\ud800" in frame
    with pytest.raises(InvalidInput, match=r"^printer_status\.error_code: must be valid Unicode"):
        decode(frame, "json")


def test_msgpack_nan_is_refused_by_field() -> None:
    frame = msgpack.packb(with_(STATUS, bed_temp=float("nan")))
    with pytest.raises(InvalidInput, match=r"^printer_status\.bed_temp: must be a finite number"):
        decode(frame, "msgpack")


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_oversized_frame_is_refused_before_parsing(fmt: str) -> None:
    envelope = with_(STATUS, error_code="x" * 200)
    frame = encode(decode(json.dumps(envelope), "json"), fmt)
    assert decode(frame, fmt, max_size=len(frame)) is not None  # the boundary is inclusive
    with pytest.raises(EnsembleError) as info:
        decode(frame, fmt, max_size=len(frame) - 1)
    assert type(info.value) is PayloadTooLarge
    assert info.value.details["size"] == len(frame)
    # Junk that large is refused for its size, not its content.
    with pytest.raises(PayloadTooLarge):
        decode(b"\xc1" * (DEFAULT_MAX_SIZE + 1) if fmt == "msgpack" else "{" * (DEFAULT_MAX_SIZE + 1), fmt)


def test_text_size_counts_utf8_bytes_not_characters() -> None:
    frame = encode(PrinterStatus(seq=1, printer_id="p", status=PrinterState.IDLE, ts=1, error_code="€" * 100), "json")
    size = len(frame.encode("utf-8"))
    assert size > len(frame) + 150
    assert decode(frame, "json", max_size=size) is not None
    with pytest.raises(PayloadTooLarge):
        decode(frame, "json", max_size=size - 1)
    with pytest.raises(PayloadTooLarge):
        decode(frame, "json", max_size=len(frame))  # characters would fit, bytes do not


@pytest.mark.parametrize("fmt", ["xml", "JSON", ""])
def test_unknown_format(fmt: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        decode(GOOD, fmt)
    with pytest.raises(UnsupportedMediaType):
        encode(CommandAck(seq=1, command_id="c", success=True, ts=1), fmt)


ENCODE_ROWS: list[tuple[Message, str]] = [
    (PrinterStatus(seq=1, printer_id="p", status=PrinterState.IDLE, ts=1, progress=101), "printer_status.progress"),
    (PrinterStatus(seq=-1, printer_id="p", status=PrinterState.IDLE, ts=1), "printer_status.seq"),
    (
        PrinterStatus(seq=1, printer_id="p", status="idle", ts=1),  # type: ignore[arg-type]
        "printer_status.status",
    ),
    (
        PrinterStatus(seq=1, printer_id="p", status=PrinterState.IDLE, ts=1, bed_temp=float("inf")),
        "printer_status.bed_temp",
    ),
    (CommandAck(seq=1, command_id="c", success=False, ts=1), "command_ack.error"),
    (
        FileProgress(
            seq=1, job_id="j", printer_id="p", phase=TransferPhase.UPLOADING, bytes_sent=2, bytes_total=1, ts=1
        ),
        "file_progress.bytes_sent",
    ),
    (
        PrinterList(seq=1, printers=[PrinterInfo(printer_id="p", connection_type=ConnectionType.BAMBU, connected=True)], ts=1),  # type: ignore[arg-type]
        "printer_list.printers",
    ),
    (
        PrinterList(seq=1, printers=(PrinterInfo(printer_id="", connection_type=ConnectionType.BAMBU, connected=True),), ts=1),
        "printer_list.printers[0].printer_id",
    ),
    (
        HubHello(hub_id="h\n", firmware="1", timestamp=1, nonce="n" * 16, signature="a" * 64, stream_id="s"),
        "hub_hello.hub_id",
    ),
]


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize(("msg", "prefix"), ENCODE_ROWS, ids=[r[1] for r in ENCODE_ROWS])
def test_encode_refuses_invalid_messages(msg: Message, prefix: str, fmt: str) -> None:
    """A sender's bug is caught where it happens, not by the peer."""
    with pytest.raises(EnsembleError) as info:
        encode(msg, fmt)
    assert type(info.value) is InvalidInput
    assert str(info.value).startswith(prefix + ":"), str(info.value)
