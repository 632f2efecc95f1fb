"""Fixtures for the hubs tests: a gateway with the real-time lane, simulated printers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from ensemble.hubs.simulator import PrintSettings, SimulatorThread
from tests.hubs._helpers import Gateway, running_gateway

# asyncua logs every session's security choices at WARNING.
logging.getLogger("asyncua").setLevel(logging.ERROR)


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, tmp_path / "data") as gw:
        yield gw


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorThread]:
    sim = SimulatorThread(PrintSettings(print_seconds=4.0, heat_seconds=0.5, layers=20))
    await trio.to_thread.run_sync(sim.start)
    try:
        yield sim
    finally:
        await trio.to_thread.run_sync(sim.stop)
