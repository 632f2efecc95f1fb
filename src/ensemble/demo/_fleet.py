"""The demo's print room: three simulated OPC UA printers and an in-process hub agent.

The simulators (``SimulatorThread``: each its own asyncio thread) listen on
127.0.0.1 on free ports; the agent (``HubAgent``, the same code as
``ensemble hub-agent``) connects to this server's own port with the demo
hub's id and secret and bridges the three printers.  Its outbox and command
memory live in ``<data_dir>/demo-hub/<hub id>/``.

A restarted server starts with fresh simulators, which know nothing of a
print that was running when the server stopped.  So, before the agent
connects, each simulator whose printer had a job printing is told the job's
id and progress (a printer back from a power cut that remembers which job it
lost): the agent reports it idle with that job, and the hub actor fails it
("stopped on the printer before finishing") by its ordinary rules.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

from ensemble.demo import _catalog as catalog
from ensemble.demo._director import DirectorOptions, run_director
from ensemble.demo._jobs import describe_hub
from ensemble.hubs.agent import AgentConfig, HubAgent, PrinterConfig
from ensemble.hubs.simulator import PrintSettings, SimulatorThread
from ensemble.log import get_logger

if TYPE_CHECKING:
    from ensemble.demo._seed import DemoSeed
    from ensemble.server import Services

__all__ = ["DemoFleet", "run_fleet", "local_origin"]

log = get_logger("ensemble.demo")


@dataclasses.dataclass
class DemoFleet:
    agent: HubAgent
    simulators: dict[str, SimulatorThread]  # printer id -> its simulator


def local_origin(url: str) -> str:
    """``http://host:port`` through which this machine reaches a server bound to ``url``.

    A wildcard bind (0.0.0.0, ::) is reached over loopback.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{parts.port}"


async def run_fleet(
    services: Services,
    seed: DemoSeed,
    *,
    origin: str,
    state_dir: Path,
    printer_settings: PrintSettings = catalog.SIMULATOR_SETTINGS,
    director: DirectorOptions | None = None,
    task_status: trio.TaskStatus[DemoFleet] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the simulators, the agent and the director until cancelled; ``started`` once the agent runs."""
    # asyncua logs every session's security choices at WARNING.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    simulators = {str(p.printer_id): SimulatorThread(printer_settings) for p in seed.printers}
    try:
        async with trio.open_nursery() as starting:
            for simulator in simulators.values():
                starting.start_soon(partial(trio.to_thread.run_sync, simulator.start))
        await _remember_interrupted_jobs(services, seed, simulators)
        agent = HubAgent(_agent_config(seed, simulators, origin, state_dir))
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            nursery.start_soon(partial(run_director, services, seed, simulators, origin=origin,
                                       options=director or DirectorOptions()))
            log.info("demo_fleet_running", hub_id=seed.hub_id,
                     printers={p.name: simulators[str(p.printer_id)].endpoint for p in seed.printers})
            task_status.started(DemoFleet(agent=agent, simulators=simulators))
    finally:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as stopping:
                for simulator in simulators.values():
                    stopping.start_soon(partial(trio.to_thread.run_sync, simulator.stop))


def _agent_config(seed: DemoSeed, simulators: dict[str, SimulatorThread], origin: str, state_dir: Path) -> AgentConfig:
    server = "ws" + origin[len("http"):] if origin.startswith("http") else origin
    spec = catalog.PRINTERS
    return AgentConfig(
        hub_id=seed.hub_id,
        secret=seed.hub_secret,
        server=server,
        state_dir=state_dir / seed.hub_id,
        format="msgpack",
        firmware="ensemble-demo-agent/0.1",
        backoff_initial_s=0.5,
        backoff_max_s=5.0,
        printers=tuple(
            PrinterConfig(printer_id=str(p.printer_id), connector="opcua",
                          endpoint=simulators[str(p.printer_id)].endpoint or "", name=p.name,
                          model=spec[p.index].model)
            for p in seed.printers
        ),
    )


async def _remember_interrupted_jobs(
    services: Services, seed: DemoSeed, simulators: dict[str, SimulatorThread]
) -> None:
    view = await describe_hub(services, seed.hub_id)
    for job in view["jobs"]:
        simulator = simulators.get(job["printer_id"])
        if simulator is None or job["status"] not in ("printing", "paused"):
            continue  # queued/uploading: its print command is still pending and will be re-sent

        def remember(model: Any, job_id: str = job["job_id"], progress: Any = job.get("progress")) -> None:
            model.job_id = job_id
            model.progress = float(progress or 0)

        await trio.to_thread.run_sync(simulator.call, remember)
        log.info("demo_interrupted_print", job_id=job["job_id"], printer_id=job["printer_id"])
