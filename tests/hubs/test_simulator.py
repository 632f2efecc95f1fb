"""The printer simulator: the model's behaviour (pure, time passed in) and its OPC UA face."""

from __future__ import annotations

import pytest
import trio

from ensemble.bridge import open_bridge
from ensemble.hubs.agent import CommandFailed, OpcUaConnector, PrinterConfig
from ensemble.hubs.simulator import (
    ERROR,
    FINISHED,
    HEATING,
    IDLE,
    PAUSED,
    PRINTING,
    STOPPED,
    PrinterModel,
    PrintSettings,
    SimulatorError,
)

GCODE = b"; ensemble print_seconds=10 layers=50\nG1 X1\n"


def run(model: PrinterModel, seconds: float, dt: float = 0.1) -> None:
    for _ in range(int(round(seconds / dt))):
        model.tick(dt)


def loaded() -> PrinterModel:
    model = PrinterModel(PrintSettings(print_seconds=60, heat_seconds=2, layers=100))
    model.write_chunk("part.gcode", 0, GCODE[:10])
    model.write_chunk("part.gcode", 10, GCODE[10:])
    return model


def test_heats_prints_with_progress_and_layers_then_finishes() -> None:
    model = loaded()
    model.start("job-1", "part.gcode")
    assert model.state == HEATING and model.total_layers == 50  # the file's own timing
    run(model, 2.2)
    assert model.state == PRINTING and model.nozzle_temp == pytest.approx(215)
    run(model, 5)
    assert 45 <= model.progress <= 55 and 23 <= model.layer <= 28 and model.remaining_s == pytest.approx(5, abs=1)
    run(model, 5.5)
    assert model.state == FINISHED and model.progress == 100 and model.layer == 50 and model.job_id == "job-1"
    run(model, 5)
    assert model.nozzle_temp == pytest.approx(22)


def test_pause_resume_stop_fail_and_refusals() -> None:
    model = loaded()
    with pytest.raises(SimulatorError):
        model.pause()
    with pytest.raises(SimulatorError):
        model.start("j", "missing.gcode")
    model.start("job-1", "part.gcode")
    with pytest.raises(SimulatorError, match="busy"):
        model.start("job-2", "part.gcode")
    run(model, 3)
    model.pause()
    before = model.progress
    run(model, 3)
    assert model.state == PAUSED and model.progress == before
    model.resume()
    run(model, 1)
    assert model.state == PRINTING and model.progress > before
    model.stop()
    assert model.state == STOPPED
    model.start("job-2", "part.gcode")
    model.fail("E_THERMAL")
    assert model.state == ERROR and model.error_code == "E_THERMAL"
    with pytest.raises(SimulatorError, match="clear it first"):
        model.start("job-3", "part.gcode")
    model.clear_error()
    assert model.state == IDLE
    assert [entry[0] for entry in model.log] == ["start", "pause", "resume", "stop", "start", "fail", "clear_error"]


def test_chunks_must_be_contiguous() -> None:
    model = PrinterModel()
    model.write_chunk("a", 0, b"abc")
    with pytest.raises(SimulatorError):
        model.write_chunk("a", 5, b"x")


async def test_the_opc_ua_face(simulator) -> None:
    """Through the agent's connector: statuses stream in, methods run, refusals come back as failures."""
    seen: list[dict] = []

    class Sink:
        up = False

        def connected(self, printer_id: str, up: bool) -> None:
            Sink.up = up

        def update(self, printer_id: str, fields: dict) -> None:
            seen.append(fields)

    async with open_bridge() as bridge:
        connector = OpcUaConnector(PrinterConfig(printer_id="p", connector="opcua", endpoint=simulator.endpoint),
                                   bridge)
        async with trio.open_nursery() as nursery:
            await nursery.start(connector.run, Sink())
            assert Sink.up and seen[0]["status"] == "idle"
            with pytest.raises(CommandFailed, match="refused pause"):
                await connector.control("pause", None)
            sent: list[int] = []
            await connector.upload("p.gcode", b"; ensemble print_seconds=1 layers=4\n" + b"G1\n" * 30000,
                                   lambda done, total: sent.append(done))
            assert sent[-1] == len(b"; ensemble print_seconds=1 layers=4\n") + 90000 and len(sent) > 2
            await connector.start_print("job-9", "p.gcode")
            with trio.fail_after(15):
                while not any(f.get("progress") == 100 for f in seen):
                    await trio.sleep(0.05)
            statuses = [f["status"] for f in seen if "status" in f]
            assert "printing" in statuses and statuses[-1] == "idle"
            assert simulator.model.log == [("start", "job-9", "p.gcode")]
            nursery.cancel_scope.cancel()
