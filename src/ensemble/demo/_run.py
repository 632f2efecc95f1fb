"""``ensemble serve --demo``: seed, print the credentials, run the print room."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import TYPE_CHECKING

import trio

from ensemble.demo import _catalog as catalog
from ensemble.demo._banner import print_credentials
from ensemble.demo._director import DirectorOptions
from ensemble.demo._fleet import DemoFleet, local_origin, run_fleet
from ensemble.demo._seed import DemoSeed, seed_demo
from ensemble.hubs.simulator import PrintSettings

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["RunningDemo", "run_demo", "DEMO_HUB_STATE_DIR"]

DEMO_HUB_STATE_DIR = "demo-hub"


@dataclasses.dataclass
class RunningDemo:
    seed: DemoSeed
    fleet: DemoFleet
    console_url: str


async def run_demo(
    services: Services,
    url: str,
    *,
    printer_settings: PrintSettings = catalog.SIMULATOR_SETTINGS,
    director: DirectorOptions | None = None,
    banner: bool = True,
    task_status: trio.TaskStatus[RunningDemo] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Seed the demo against the server bound at ``url``, then run its printers until cancelled.

    ``started`` once the seed is done, the agent runs and the credentials are printed.
    """
    origin = local_origin(url)
    seed = await seed_demo(services, origin=origin)
    state_dir = services.settings.data_dir / DEMO_HUB_STATE_DIR
    async with trio.open_nursery() as nursery:
        fleet = await nursery.start(partial(run_fleet, services, seed, origin=origin, state_dir=state_dir,
                                            printer_settings=printer_settings, director=director))
        console_url = origin + "/"
        if banner:
            print_credentials(seed, console_url)
        task_status.started(RunningDemo(seed=seed, fleet=fleet, console_url=console_url))
