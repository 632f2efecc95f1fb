"""The agent's pieces on their own: outbox, command memory, configuration, field normalization."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ensemble.hubs.agent import ConfigError, Outbox, load_config
from ensemble.hubs.agent._opcua import normalize_field
from ensemble.hubs.agent._transfer import resolve_url
from ensemble.hubs.protocol import CommandAck, PrinterConnected, PrinterState, PrinterStatus


def status(seq: int, printer: str = "p1") -> PrinterStatus:
    return PrinterStatus(seq=seq, printer_id=printer, status=PrinterState.PRINTING, ts=1000 + seq, progress=seq % 100)


def ack(seq: int, command_id: str) -> CommandAck:
    return CommandAck(seq=seq, command_id=command_id, success=True, ts=1000 + seq)


def test_outbox_numbers_events_and_survives_a_restart(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_events=100)
    stream = box.stream_id
    for _ in range(5):
        box.add(status)
    assert [e["seq"] for e in box.pending(-1)] == [0, 1, 2, 3, 4]
    box.acknowledge(2)
    assert [e["seq"] for e in box.pending(-1)] == [3, 4]
    box.close()
    again = Outbox(tmp_path / "o.sqlite3", max_events=100)
    assert again.stream_id == stream and again.next_seq == 5
    assert [e["seq"] for e in again.pending(-1)] == [3, 4]
    assert again.add(status).seq == 5  # type: ignore[attr-defined]


def test_a_full_outbox_drops_the_oldest_status_first_and_never_an_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_events=10)
    box.add(lambda seq: ack(seq, "c-first"))
    box.add(lambda seq: PrinterConnected(seq=seq, printer_id="p1", ts=1))
    for _ in range(20):
        box.add(status)
    box.add(lambda seq: ack(seq, "c-last"))
    kept = box.pending(-1, limit=1000)
    assert len(kept) == 10 and box.dropped == 13
    types = [e["type"] for e in kept]
    assert types[0] == "command_ack" and types[1] == "printer_connected" and types[-1] == "command_ack"
    statuses = [e["seq"] for e in kept if e["type"] == "printer_status"]
    assert statuses == sorted(statuses) and statuses[-1] == 21  # the newest survive, in order
    # Only acks left and still over the bound: nothing is dropped.
    small = Outbox(tmp_path / "acks.sqlite3", max_events=10)
    for i in range(15):
        small.add(lambda seq, i=i: ack(seq, f"c{i}"))
    assert len(small) == 15 and small.dropped == 0


def test_command_memory_survives_and_reports_interrupted_commands(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.command_started("c1")
    done = box.add(lambda seq: ack(seq, "c1"))
    box.command_done(done)  # type: ignore[arg-type]
    box.command_started("c2")  # the agent dies while c2 runs
    box.close()
    again = Outbox(tmp_path / "o.sqlite3")
    finished, interrupted = again.remembered_commands()
    assert [a.command_id for a in finished] == ["c1"] and interrupted == ["c2"]


def test_wiping_the_state_directory_starts_a_new_stream(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "a" / "o.sqlite3")
    second = Outbox(tmp_path / "b" / "o.sqlite3")
    assert first.stream_id != second.stream_id and second.next_seq == 0


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "hub.secret").write_text("s3cret\n")
    config = load_config(write(tmp_path / "hub.toml", """
        [hub]
        id = "7b0f2c3e-0000-4000-8000-000000000000"
        secret_file = "hub.secret"
        server = "ws://127.0.0.1:8080"
        state_dir = "state"

        [outbox]
        max_events = 500

        [[printers]]
        printer_id = "p1"
        endpoint = "opc.tcp://127.0.0.1:4840/ensemble/printer"

          [printers.opcua.states]
          "7" = "maintenance"
    """))
    assert config.secret == "s3cret"
    assert config.url == "ws://127.0.0.1:8080/api/v1/hubs/connect"
    assert config.http_origin == "http://127.0.0.1:8080"
    assert config.state_dir == tmp_path / "state" and config.outbox_max_events == 500
    assert config.printers[0].opcua.states["7"] == "maintenance"
    assert config.printers[0].opcua.states["2"] == "printing"  # defaults kept


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[hub]\nid = "x"\nsecret = "s"\nserver = "http://h"\n', "hub.server"),
        ('[hub]\nid = "x"\nsecret = "s"\nserver = "ws://h"\nsurprise = 1\n', "unknown key 'surprise'"),
        ('[hub]\nid = "x"\nserver = "ws://h"\n', "secret"),
        ('[hub]\nid = "x"\nsecret = "s"\nserver = "ws://h"\n[[printers]]\nprinter_id = "p"\nendpoint = "e"\n'
         'connector = "mqtt"\n', "unknown connector"),
        ('[hub]\nid = "x"\nsecret = "s"\nserver = "ws://h"\n[[printers]]\nprinter_id = "p"\nendpoint = "e"\n'
         '[printers.opcua.states]\n"1" = "melting"\n', "'melting' is not one of"),
        ('[hub]\nid = "x"\nsecret = "s"\nserver = "ws://h"\n[connection]\nbackoff_initial_s = "soon"\n', "wrong type"),
    ],
)
def test_config_mistakes_are_named(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_config(write(tmp_path / "hub.toml", text))


def test_normalization_of_device_values() -> None:
    states = {"0": "idle", "2": "printing", "5": "error"}
    assert normalize_field("state", 2, states) == ("status", "printing")
    assert normalize_field("state", 9, states) == ("status", "error")  # unknown device state
    assert normalize_field("progress", 99.7, states) == ("progress", 99)
    assert normalize_field("progress", 130.0, states) == ("progress", 100)
    assert normalize_field("job_id", "", states) == ("job_id", None)
    assert normalize_field("nozzle_temp", 215.123, states) == ("nozzle_temp", 215.12)
    assert resolve_url("/api/v1/objects/k?sig=1", "http://127.0.0.1:8080") == "http://127.0.0.1:8080/api/v1/objects/k?sig=1"
    assert resolve_url("https://s3.example/k", "http://x") == "https://s3.example/k"


def test_the_agent_imports_no_server_package() -> None:
    # Allowed besides its own packages: the exception tree and the asyncio
    # bridge, which are shared utilities, not server packages.
    code = (
        "import sys, ensemble.hubs.agent, ensemble.hubs.agent.__main__;"
        "bad = sorted(m for m in sys.modules if m.startswith('ensemble.') and not m.startswith(('ensemble.hubs.agent', 'ensemble.hubs.protocol'))"
        " and m not in ('ensemble.hubs', 'ensemble.errors', 'ensemble.bridge'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
