"""What the demo printers do by themselves, so the dashboard has something to show.

* **Keep printing** (``KEEP_PRINTING``, bay 1): when the printer has been idle
  for ``idle_pause_s`` with no active job, the owner submits the next demo
  file of the rotation, exactly as the console's "start" does.  The pause
  leaves room for a person to start their own job first; the other bays stay
  idle for people to use.
* **Fail once** (bay 2): the gear housing seeded with the tenant fails a third
  of the way through with a nozzle clog injected into its simulator (the
  printer reports ``error``, the job fails, the dashboard gets the alerts);
  the error is cleared a little later and the printer is idle again.  It
  happens only while that seeded job is active, so only on the first run.

Both read the hub actor's view (``describe``) to see jobs and the hub's
link, and the simulator's model to see the device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ensemble.demo import _catalog as catalog
from ensemble.demo._jobs import describe_hub, submit_print_job
from ensemble.errors import EnsembleError
from ensemble.hubs.simulator import FINISHED, IDLE, PRINTING, STOPPED, SimulatorThread
from ensemble.log import get_logger

if TYPE_CHECKING:
    from ensemble.demo._seed import DemoPrinter, DemoSeed
    from ensemble.server import Services

__all__ = ["DirectorOptions", "run_director"]

log = get_logger("ensemble.demo")


@dataclasses.dataclass(frozen=True)
class DirectorOptions:
    keep_printing: tuple[int, ...] = catalog.KEEP_PRINTING
    rotation: tuple[str, ...] = catalog.ROTATION
    idle_pause_s: float = 8.0
    poll_s: float = 1.0
    fail_printer: int | None = 1
    fail_at_progress: float = 33.0
    clear_error_after_s: float = 20.0


async def run_director(
    services: Services, seed: DemoSeed, simulators: Mapping[str, SimulatorThread], *, origin: str,
    options: DirectorOptions,
) -> None:
    async with trio.open_nursery() as nursery:
        for index in options.keep_printing:
            printer = seed.printers[index]
            nursery.start_soon(_contained, "keep_printing", partial(
                _keep_printing, services, seed, printer, simulators[str(printer.printer_id)], origin, options))
        if options.fail_printer is not None:
            printer = seed.printers[options.fail_printer]
            nursery.start_soon(_contained, "fail_once", partial(
                _fail_once, services, seed, printer, simulators[str(printer.printer_id)], options))


async def _contained(name: str, routine: Callable[[], Awaitable[None]]) -> None:
    """Run a routine; a bug in it stops the routine, never the server it runs in."""
    try:
        await routine()
    except Exception:
        log.exception("demo_routine_failed", routine=name)


async def _view(services: Services, seed: DemoSeed) -> dict[str, Any] | None:
    try:
        return await describe_hub(services, seed.hub_id)
    except EnsembleError as exc:  # busy, or the actor system is shutting down: look again later
        log.debug("demo_describe_failed", error=exc.message)
        return None


async def _keep_printing(
    services: Services, seed: DemoSeed, printer: DemoPrinter, simulator: SimulatorThread, origin: str,
    options: DirectorOptions,
) -> None:
    printer_id = str(printer.printer_id)
    turn = 0
    idle_since: float | None = None
    while True:
        await trio.sleep(options.poll_s)
        view = await _view(services, seed)
        if view is None:
            continue
        hub = view["hub"]
        jobs = view["jobs"]
        reported = {p["printer_id"]: p.get("status") for p in view["printers"]}
        idle = (
            bool(hub.get("is_online"))
            and not any(job["printer_id"] == printer_id for job in jobs)
            and reported.get(printer_id) == "idle"
            and simulator.model.state in (IDLE, FINISHED, STOPPED)
        )
        now = trio.current_time()
        if not idle:
            idle_since = None
            continue
        if idle_since is None:
            idle_since = now
        if now - idle_since < options.idle_pause_s:
            continue
        file_name = options.rotation[turn % len(options.rotation)]
        turn += 1
        idle_since = None
        try:
            job = await submit_print_job(
                services, tenant_id=seed.tenant_id, user_id=seed.owner.user_id, printer_id=printer.printer_id,
                file_id=seed.files[file_name], origin=origin,
            )
        except EnsembleError as exc:  # someone started a job on it just now, or the file was deleted
            log.info("demo_auto_print_skipped", printer=printer.name, reason=exc.message)
            continue
        except Exception:  # the object store, say: try again at the next idle spell
            log.exception("demo_auto_print_failed", printer=printer.name)
            continue
        log.info("demo_auto_print", printer=printer.name, file=file_name, job_id=str(job["id"]))


async def _fail_once(
    services: Services, seed: DemoSeed, printer: DemoPrinter, simulator: SimulatorThread, options: DirectorOptions,
) -> None:
    printer_id = str(printer.printer_id)
    while True:
        await trio.sleep(options.poll_s)
        view = await _view(services, seed)
        if view is None:
            continue
        job = next((j for j in view["jobs"]
                    if j["printer_id"] == printer_id and j["file_name"] == catalog.FAILING_FILE), None)
        if job is None:
            return  # failed already (an earlier run), cancelled, or never seeded: nothing to do
        model = simulator.model
        if model.state == PRINTING and model.job_id == job["job_id"] and model.progress >= options.fail_at_progress:
            break
    log.info("demo_inject_failure", printer=printer.name, code=catalog.FAILURE_CODE, job_id=job["job_id"])
    await trio.to_thread.run_sync(simulator.call, lambda m: m.fail(catalog.FAILURE_CODE))
    await trio.sleep(options.clear_error_after_s)
    await trio.to_thread.run_sync(simulator.call, lambda m: m.clear_error())
