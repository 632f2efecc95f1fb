"""Frames <-> messages, as a table run in both directions (h11 test_io style).

Each row is written by hand: a message object and the exact JSON text it must
become.  The expected msgpack bytes are derived from that JSON with the msgpack
library itself (never with our encoder), and a few rows pin raw bytes too.
"""

from __future__ import annotations

import json

import msgpack
import pytest

from ensemble.hubs.protocol import (
    DASHBOARD_MESSAGES,
    FROM_DASHBOARD,
    FROM_HUB,
    HUB_MESSAGES,
    TO_DASHBOARD,
    TO_HUB,
    Alert,
    AlertSeverity,
    Auth,
    AuthError,
    AuthSuccess,
    CommandAck,
    ConfigureAction,
    ConfigurePrinter,
    ConnectionType,
    ControlAction,
    DashboardPrinterStatus,
    Disconnect,
    DiscoveredPrinter,
    DiscoverPrinters,
    Error,
    FileProgress,
    Heartbeat,
    HubHello,
    HubStatus,
    HubWelcome,
    JobStatus,
    JobUpdate,
    Message,
    MessageSet,
    Ping,
    Pong,
    PrintCommand,
    PrinterCommand,
    PrinterConfig,
    PrinterConnected,
    PrinterDisconnected,
    PrinterDiscovered,
    PrinterInfo,
    PrinterList,
    PrinterState,
    PrinterStatus,
    SeqAck,
    Snapshot,
    Subscribe,
    TransferPhase,
    Unsubscribe,
    decode,
    encode,
    from_wire,
    to_wire,
)

TS = 1700000000000
SIG = "ab" * 32
SHA = "0f" * 32
P1 = PrinterInfo(printer_id="p1", connection_type=ConnectionType.BAMBU, connected=True)
P2 = PrinterInfo(
    printer_id="p2",
    connection_type=ConnectionType.OPCUA,
    connected=False,
    name="Drucker Ü",
    model="X1C",
    serial_number="01S00A",
    firmware_version="1.2.3",
)
P1_JSON = '{"printer_id":"p1","connection_type":"bambu","connected":true}'
P2_JSON = (
    '{"printer_id":"p2","connection_type":"opcua","connected":false,"name":"Drucker Ü",'
    '"model":"X1C","serial_number":"01S00A","firmware_version":"1.2.3"}'
)
DPS = DashboardPrinterStatus(printer_id="p1", status=PrinterState.IDLE)
JOB = JobUpdate(job_id="j1", status=JobStatus.QUEUED)
HUB = HubStatus(hub_id="h1", is_online=False)

HUB_ROWS: list[tuple[Message, str]] = [
    (Ping(), '{"type":"ping"}'),
    (Ping(ts=5), '{"type":"ping","ts":5}'),
    (Pong(ts=5), '{"type":"pong","ts":5}'),
    (
        HubHello(
            hub_id="hub-1",
            firmware="1.0.0",
            timestamp=1700000000,
            nonce="0123456789abcdef",
            signature=SIG,
            stream_id="s1",
        ),
        '{"type":"hub_hello","hub_id":"hub-1","firmware":"1.0.0","timestamp":1700000000,'
        f'"nonce":"0123456789abcdef","signature":"{SIG}","stream_id":"s1","protocol":1,'
        '"capabilities":[],"printers":[]}',
    ),
    (
        HubHello(
            hub_id="hub-1",
            firmware="1.0.0",
            timestamp=1700000000,
            nonce="0123456789abcdef",
            signature=SIG,
            stream_id="s1",
            protocol=2,
            capabilities=("opcua", "store_forward"),
            printers=(P1, P2),
            hardware_revision="rev-b",
            local_ip="192.168.1.5",
        ),
        '{"type":"hub_hello","hub_id":"hub-1","firmware":"1.0.0","timestamp":1700000000,'
        f'"nonce":"0123456789abcdef","signature":"{SIG}","stream_id":"s1","protocol":2,'
        f'"capabilities":["opcua","store_forward"],"printers":[{P1_JSON},{P2_JSON}],'
        '"hardware_revision":"rev-b","local_ip":"192.168.1.5"}',
    ),
    (
        Heartbeat(ts=TS, uptime_s=3600, backlog=2, wifi_rssi=-60, local_ip="10.0.0.2"),
        '{"type":"heartbeat","ts":1700000000000,"uptime_s":3600,"backlog":2,"wifi_rssi":-60,'
        '"local_ip":"10.0.0.2"}',
    ),
    (
        PrinterStatus(seq=7, printer_id="p1", status=PrinterState.IDLE, ts=TS),
        '{"type":"printer_status","seq":7,"printer_id":"p1","status":"idle","ts":1700000000000}',
    ),
    (
        PrinterStatus(
            seq=8,
            printer_id="p1",
            status=PrinterState.PRINTING,
            ts=TS,
            job_id="j1",
            progress=45,
            remaining_s=3600,
            layer=50,
            total_layers=200,
            nozzle_temp=220.5,
            nozzle_target=220.0,
            bed_temp=59.8,
            bed_target=60.0,
            error_code="0300-4000",
        ),
        '{"type":"printer_status","seq":8,"printer_id":"p1","status":"printing","ts":1700000000000,'
        '"job_id":"j1","progress":45,"remaining_s":3600,"layer":50,"total_layers":200,'
        '"nozzle_temp":220.5,"nozzle_target":220.0,"bed_temp":59.8,"bed_target":60.0,'
        '"error_code":"0300-4000"}',
    ),
    (
        PrinterConnected(seq=9, printer_id="p1", ts=TS),
        '{"type":"printer_connected","seq":9,"printer_id":"p1","ts":1700000000000}',
    ),
    (
        PrinterDisconnected(seq=10, printer_id="p1", ts=TS, reason="mqtt timeout"),
        '{"type":"printer_disconnected","seq":10,"printer_id":"p1","ts":1700000000000,'
        '"reason":"mqtt timeout"}',
    ),
    (
        PrinterList(seq=11, printers=(P1,), ts=TS),
        f'{{"type":"printer_list","seq":11,"printers":[{P1_JSON}],"ts":1700000000000}}',
    ),
    (
        PrinterDiscovered(
            seq=12,
            printers=(DiscoveredPrinter(connection_type=ConnectionType.BAMBU, address="192.168.1.20", model="P1S"),),
            ts=TS,
            command_id="c9",
        ),
        '{"type":"printer_discovered","seq":12,"printers":[{"connection_type":"bambu",'
        '"address":"192.168.1.20","model":"P1S"}],"ts":1700000000000,"command_id":"c9"}',
    ),
    (
        CommandAck(seq=13, command_id="c1", success=True, ts=TS),
        '{"type":"command_ack","seq":13,"command_id":"c1","success":true,"ts":1700000000000}',
    ),
    (
        CommandAck(seq=14, command_id="c2", success=False, ts=TS, error="printer busy", error_code="conflict"),
        '{"type":"command_ack","seq":14,"command_id":"c2","success":false,"ts":1700000000000,'
        '"error":"printer busy","error_code":"conflict"}',
    ),
    (
        FileProgress(
            seq=15,
            job_id="j1",
            printer_id="p1",
            phase=TransferPhase.UPLOADING,
            bytes_sent=1000,
            bytes_total=5000,
            ts=TS,
            command_id="c3",
        ),
        '{"type":"file_progress","seq":15,"job_id":"j1","printer_id":"p1","phase":"uploading",'
        '"bytes_sent":1000,"bytes_total":5000,"ts":1700000000000,"command_id":"c3"}',
    ),
    (
        HubWelcome(hub_id="hub-1", server_time=TS),
        '{"type":"hub_welcome","hub_id":"hub-1","server_time":1700000000000,"last_seq":-1,'
        '"heartbeat_s":30,"claimed":false}',
    ),
    (
        HubWelcome(hub_id="hub-1", server_time=TS, last_seq=99, heartbeat_s=10, claimed=True),
        '{"type":"hub_welcome","hub_id":"hub-1","server_time":1700000000000,"last_seq":99,'
        '"heartbeat_s":10,"claimed":true}',
    ),
    (AuthError(message="bad signature"), '{"type":"auth_error","message":"bad signature"}'),
    (SeqAck(seq=41), '{"type":"seq_ack","seq":41}'),
    (
        PrintCommand(
            command_id="c4",
            printer_id="p1",
            job_id="j1",
            file_url="https://s3.example/t1/model.3mf?X-Amz-Signature=abc",
            file_name="model.3mf",
            file_size=123456,
            sha256=SHA,
            url_expires_at=TS + 900_000,
        ),
        '{"type":"print_command","command_id":"c4","printer_id":"p1","job_id":"j1",'
        '"file_url":"https://s3.example/t1/model.3mf?X-Amz-Signature=abc","file_name":"model.3mf",'
        f'"file_size":123456,"sha256":"{SHA}","action":"start","url_expires_at":1700000900000}}',
    ),
    (
        PrinterCommand(command_id="c5", printer_id="p1", action=ControlAction.PAUSE, job_id="j1"),
        '{"type":"printer_command","command_id":"c5","printer_id":"p1","action":"pause","job_id":"j1"}',
    ),
    (
        PrinterCommand(command_id="c6", printer_id="p1", action=ControlAction.STOP),
        '{"type":"printer_command","command_id":"c6","printer_id":"p1","action":"stop"}',
    ),
    (
        ConfigurePrinter(
            command_id="c7",
            action=ConfigureAction.ADD,
            printer=PrinterConfig(
                printer_id="p3",
                connection_type=ConnectionType.BAMBU,
                address="192.168.1.21",
                name="Left",
                model="P1S",
                serial_number="01P00C",
                access_code="12345678",
            ),
        ),
        '{"type":"configure_printer","command_id":"c7","action":"add","printer":{"printer_id":"p3",'
        '"connection_type":"bambu","address":"192.168.1.21","name":"Left","model":"P1S",'
        '"serial_number":"01P00C","access_code":"12345678"}}',
    ),
    (
        ConfigurePrinter(command_id="c8", action=ConfigureAction.REMOVE, printer=PrinterConfig(printer_id="p3")),
        '{"type":"configure_printer","command_id":"c8","action":"remove",'
        '"printer":{"printer_id":"p3","connection_type":"bambu"}}',
    ),
    (DiscoverPrinters(command_id="c9"), '{"type":"discover_printers","command_id":"c9"}'),
    (
        Disconnect(code="replaced", message="another connection took over", retry_after_s=5),
        '{"type":"disconnect","code":"replaced","message":"another connection took over","retry_after_s":5}',
    ),
    (Disconnect(code="shutdown"), '{"type":"disconnect","code":"shutdown","message":""}'),
    (Error(code="invalid_input", message="x"), '{"type":"error","code":"invalid_input","message":"x"}'),
]

DASHBOARD_ROWS: list[tuple[Message, str]] = [
    (Auth(token="eyJ.jwt.sig"), '{"type":"auth","token":"eyJ.jwt.sig"}'),
    (Subscribe(), '{"type":"subscribe"}'),
    (Subscribe(printers=("p1", "p2")), '{"type":"subscribe","printers":["p1","p2"]}'),
    (Subscribe(printers=()), '{"type":"subscribe","printers":[]}'),
    (Unsubscribe(printers=("p1",)), '{"type":"unsubscribe","printers":["p1"]}'),
    (Unsubscribe(), '{"type":"unsubscribe"}'),
    (Ping(), '{"type":"ping"}'),
    (AuthSuccess(user_id="u1", tenant_id="t1"), '{"type":"auth_success","user_id":"u1","tenant_id":"t1"}'),
    (AuthError(message="Invalid token"), '{"type":"auth_error","message":"Invalid token"}'),
    (Pong(), '{"type":"pong"}'),
    (
        DashboardPrinterStatus(
            printer_id="p1",
            status=PrinterState.PRINTING,
            progress=45,
            remaining_minutes=60,
            current_layer=50,
            total_layers=200,
            offset=12,
            epoch="e1",
        ),
        '{"type":"printer_status","printer_id":"p1","status":"printing","progress":45,'
        '"remaining_minutes":60,"current_layer":50,"total_layers":200,"offset":12,"epoch":"e1"}',
    ),
    (
        JobUpdate(job_id="j1", status=JobStatus.COMPLETED, actual_time_minutes=120),
        '{"type":"job_update","job_id":"j1","status":"completed","actual_time_minutes":120}',
    ),
    (
        HubStatus(hub_id="h1", is_online=True, printer_count=3),
        '{"type":"hub_status","hub_id":"h1","is_online":true,"printer_count":3}',
    ),
    (
        Alert(
            alert_id="a1",
            kind="hub_offline",
            severity=AlertSeverity.WARNING,
            message="Hub h1 offline for 5 min",
            ts=TS,
            hub_id="h1",
        ),
        '{"type":"alert","alert_id":"a1","kind":"hub_offline","severity":"warning",'
        '"message":"Hub h1 offline for 5 min","ts":1700000000000,"hub_id":"h1"}',
    ),
    (
        Snapshot(printers=(DPS,), jobs=(JOB,), hubs=(HUB,), offset=40, epoch="e1"),
        '{"type":"snapshot","printers":[{"printer_id":"p1","status":"idle"}],'
        '"jobs":[{"job_id":"j1","status":"queued"}],'
        '"hubs":[{"hub_id":"h1","is_online":false,"printer_count":0}],"offset":40,"epoch":"e1"}',
    ),
    (Snapshot(), '{"type":"snapshot","printers":[],"jobs":[],"hubs":[]}'),
    (Error(code="forbidden", message="no"), '{"type":"error","code":"forbidden","message":"no"}'),
]

ROWS = [(m, t, HUB_MESSAGES) for m, t in HUB_ROWS] + [(m, t, DASHBOARD_MESSAGES) for m, t in DASHBOARD_ROWS]
ROW_IDS = [f"{m.type}-{i}" for i, (m, _, _) in enumerate(ROWS)]


def expected_msgpack(text: str) -> bytes:
    # json.loads keeps key order and float-ness, so this is the frame our
    # encoder must produce, computed without our encoder.
    packed: bytes = msgpack.packb(json.loads(text), use_bin_type=True)
    return packed


@pytest.mark.parametrize(("msg", "text", "accept"), ROWS, ids=ROW_IDS)
def test_encode_json(msg: Message, text: str, accept: MessageSet[Message]) -> None:
    assert encode(msg, "json") == text


@pytest.mark.parametrize(("msg", "text", "accept"), ROWS, ids=ROW_IDS)
def test_decode_json(msg: Message, text: str, accept: MessageSet[Message]) -> None:
    got = decode(text, "json", accept=accept)
    assert type(got) is type(msg)
    assert got == msg
    # Text frames may arrive as UTF-8 bytes too.
    assert decode(text.encode("utf-8"), "json", accept=accept) == msg


@pytest.mark.parametrize(("msg", "text", "accept"), ROWS, ids=ROW_IDS)
def test_encode_msgpack(msg: Message, text: str, accept: MessageSet[Message]) -> None:
    assert encode(msg, "msgpack") == expected_msgpack(text)


@pytest.mark.parametrize(("msg", "text", "accept"), ROWS, ids=ROW_IDS)
def test_decode_msgpack(msg: Message, text: str, accept: MessageSet[Message]) -> None:
    frame = expected_msgpack(text)
    got = decode(frame, "msgpack", accept=accept)
    assert type(got) is type(msg)
    assert got == msg
    assert decode(memoryview(bytearray(frame)), "msgpack", accept=accept) == msg


@pytest.mark.parametrize(("msg", "text", "accept"), ROWS, ids=ROW_IDS)
def test_wire_dict_matches_json(msg: Message, text: str, accept: MessageSet[Message]) -> None:
    assert to_wire(msg) == json.loads(text)
    assert from_wire(json.loads(text), accept=accept) == msg


PINNED_MSGPACK = [
    # fixmap(2) "type" "ping" "ts" 5
    (Ping(ts=5), "82 a4 74797065 a4 70696e67 a2 7473 05"),
    # fixmap(2) "type" "seq_ack" "seq" -1 (negative fixint)
    (SeqAck(seq=-1), "82 a4 74797065 a7 7365715f61636b a3 736571 ff"),
    # float64 0xcb and uint64 0xcf for a millisecond timestamp
    (
        PrinterStatus(seq=1, printer_id="p", status=PrinterState.ERROR, ts=TS, bed_temp=60.5),
        "86 a4 74797065 ae 7072696e7465725f737461747573 a3 736571 01 aa 7072696e7465725f6964 a1 70"
        " a6 737461747573 a5 6572726f72 a2 7473 cf 0000018bcfe56800 a8 6265645f74656d70 cb 404e400000000000",
    ),
]


@pytest.mark.parametrize(("msg", "hexbytes"), PINNED_MSGPACK, ids=[m.type for m, _ in PINNED_MSGPACK])
def test_pinned_msgpack_bytes(msg: Message, hexbytes: str) -> None:
    frame = bytes.fromhex(hexbytes.replace(" ", ""))
    assert encode(msg, "msgpack") == frame
    assert decode(frame, "msgpack") == msg


def test_table_covers_every_message_type() -> None:
    for accept, rows in ((HUB_MESSAGES, HUB_ROWS), (DASHBOARD_MESSAGES, DASHBOARD_ROWS)):
        assert {type(m) for m, _ in rows} == set(accept.classes), accept.name


def test_direction_sets_partition_the_protocols() -> None:
    assert FROM_HUB.types | TO_HUB.types == HUB_MESSAGES.types
    assert FROM_DASHBOARD.types | TO_DASHBOARD.types == DASHBOARD_MESSAGES.types
    # Only the symmetric heartbeat travels both ways.
    assert FROM_HUB.types & TO_HUB.types == {"ping", "pong"}
    assert FROM_DASHBOARD.types & TO_DASHBOARD.types == set()


# Frames a peer may legitimately send that are not our canonical encoding.
LENIENT_ROWS = [
    pytest.param(
        ' { "ts" : 1700000000000 , "status" : "idle", "printer_id":"p1", "seq":7, "type":"printer_status" } ',
        PrinterStatus(seq=7, printer_id="p1", status=PrinterState.IDLE, ts=TS),
        id="whitespace-and-any-key-order",
    ),
    pytest.param(
        '{"type":"printer_status","seq":7,"printer_id":"p1","status":"idle","ts":1700000000000,'
        '"chamber_temp":35,"extra":{"nested":[1,2]}}',
        PrinterStatus(seq=7, printer_id="p1", status=PrinterState.IDLE, ts=TS),
        id="unknown-fields-ignored",
    ),
    pytest.param(
        '{"type":"printer_status","seq":7,"printer_id":"p1","status":"idle","ts":1700000000000,'
        '"job_id":null,"progress":null,"nozzle_temp":null}',
        PrinterStatus(seq=7, printer_id="p1", status=PrinterState.IDLE, ts=TS),
        id="null-optional-equals-absent",
    ),
    pytest.param(
        '{"type":"printer_status","seq":7,"printer_id":"p1","status":"idle","ts":1700000000000,"bed_temp":60}',
        PrinterStatus(seq=7, printer_id="p1", status=PrinterState.IDLE, ts=TS, bed_temp=60.0),
        id="integer-for-float-field",
    ),
    pytest.param(
        '{"type":"hub_welcome","hub_id":"hub-1","server_time":1700000000000}',
        HubWelcome(hub_id="hub-1", server_time=TS),
        id="defaults-for-absent-fields",
    ),
    pytest.param(
        '{"type":"subscribe","printers":["p1"],"type_hint":"x"}',
        Subscribe(printers=("p1",)),
        id="dashboard-unknown-field",
    ),
]


@pytest.mark.parametrize(("text", "msg"), LENIENT_ROWS)
def test_decode_lenient_json(text: str, msg: Message) -> None:
    accept = DASHBOARD_MESSAGES if isinstance(msg, Subscribe) else HUB_MESSAGES
    assert decode(text, "json", accept=accept) == msg
    assert decode(msgpack.packb(json.loads(text)), "msgpack", accept=accept) == msg


def test_integer_for_float_decodes_as_float() -> None:
    got = decode(
        '{"type":"printer_status","seq":7,"printer_id":"p1","status":"idle","ts":1,"bed_temp":60}',
        "json",
        accept=FROM_HUB,
    )
    assert isinstance(got, PrinterStatus)
    assert type(got.bed_temp) is float


def test_enums_and_tuples_come_back_typed() -> None:
    got = decode(HUB_ROWS[4][1], "json", accept=FROM_HUB)
    assert isinstance(got, HubHello)
    assert type(got.printers) is tuple
    assert type(got.printers[1]) is PrinterInfo
    assert got.printers[1].connection_type is ConnectionType.OPCUA


def test_shared_type_strings_decode_per_protocol() -> None:
    hub = decode(HUB_ROWS[6][1], "json", accept=FROM_HUB)
    dash = decode('{"type":"printer_status","printer_id":"p1","status":"idle"}', "json", accept=TO_DASHBOARD)
    assert type(hub) is PrinterStatus
    assert type(dash) is DashboardPrinterStatus


def test_secrets_stay_out_of_repr() -> None:
    assert "12345678" not in repr(PrinterConfig(printer_id="p", access_code="12345678"))
    assert "eyJ.secret" not in repr(Auth(token="eyJ.secret"))
