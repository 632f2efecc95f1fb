"""What the demo is made of: the tenant, its people, hub, printers and print files.

Plain data, no I/O.  Seeding (``_seed.py``) makes the database match this
catalog; the fleet (``_fleet.py``) runs one simulated printer per
:data:`PRINTERS` entry.
"""

from __future__ import annotations

import dataclasses

from ensemble.hubs.simulator import PrintSettings

__all__ = [
    "TENANT_NAME",
    "HUB_NAME",
    "USERS",
    "PRINTERS",
    "PRINT_FILES",
    "DemoUserSpec",
    "DemoPrinterSpec",
    "PrintFileSpec",
    "SIMULATOR_SETTINGS",
    "FAILING_FILE",
    "FAILURE_CODE",
    "CANCELLED_FILE",
    "CANCEL_REASON",
    "SEEDED_JOBS",
    "KEEP_PRINTING",
    "ROTATION",
    "print_file_bytes",
]

TENANT_NAME = "Acme Print & HVAC"
HUB_NAME = "Print room hub (demo)"


@dataclasses.dataclass(frozen=True)
class DemoUserSpec:
    email: str
    name: str
    role: str  # a role of ensemble.gateway.Role


# The first one is the tenant's owner (it signs the tenant up).
USERS: tuple[DemoUserSpec, ...] = (
    DemoUserSpec("owner@demo.ensemble.local", "Morgan Reyes", "owner"),
    DemoUserSpec("technician1@demo.ensemble.local", "Sam Ortiz", "technician"),
    DemoUserSpec("technician2@demo.ensemble.local", "Priya Nair", "technician"),
    DemoUserSpec("viewer@demo.ensemble.local", "Viktor Lang", "viewer"),
)


@dataclasses.dataclass(frozen=True)
class DemoPrinterSpec:
    name: str
    model: str
    manufacturer: str
    serial_number: str
    location: str


PRINTERS: tuple[DemoPrinterSpec, ...] = (
    DemoPrinterSpec("Bay 1 - Prusa MK4", "MK4 (simulated)", "Prusa Research", "SIM-MK4-0001", "Print room, bay 1"),
    DemoPrinterSpec("Bay 2 - Prusa MK4", "MK4 (simulated)", "Prusa Research", "SIM-MK4-0002", "Print room, bay 2"),
    DemoPrinterSpec("Bay 3 - Voron 2.4", "Voron 2.4 (simulated)", "Voron Design", "SIM-V24-0003", "Print room, bay 3"),
)

# A file without its own timing header prints this long (a print started from
# the console with any uploaded file), so a demo job finishes in minutes.
SIMULATOR_SETTINGS = PrintSettings(print_seconds=120.0, heat_seconds=6.0, layers=120)


@dataclasses.dataclass(frozen=True)
class PrintFileSpec:
    name: str
    print_seconds: int
    layers: int
    lines: int = 2500  # G-code moves: about 50 KB, a few OPC UA chunks


PRINT_FILES: tuple[PrintFileSpec, ...] = (
    PrintFileSpec("calibration-cube.gcode", print_seconds=45, layers=50),
    PrintFileSpec("gear-housing.gcode", print_seconds=150, layers=180),
    PrintFileSpec("cable-clip.gcode", print_seconds=60, layers=40),
    PrintFileSpec("3dbenchy.gcode", print_seconds=240, layers=240),
    PrintFileSpec("phone-stand.gcode", print_seconds=180, layers=200),
)

# The jobs created once, with the tenant (printer index, file): the cube
# completes on bay 1, the gear housing fails on bay 2 (a nozzle clog the
# demo injects into the simulator once it is a third done), the cable clip
# is cancelled on bay 3 before it ever reaches the hub.
SEEDED_JOBS: tuple[tuple[int, str], ...] = (
    (2, "cable-clip.gcode"),
    (0, "calibration-cube.gcode"),
    (1, "gear-housing.gcode"),
)
CANCELLED_FILE = "cable-clip.gcode"
CANCEL_REASON = "wrong filament loaded: cancelled before it started"
FAILING_FILE = "gear-housing.gcode"
FAILURE_CODE = "E_NOZZLE_CLOG"

# Printers (indexes) that start the next demo file by themselves when they
# have been idle a little while, so the dashboard never goes quiet.  The
# others stay free for people to start jobs on.
KEEP_PRINTING: tuple[int, ...] = (0,)
ROTATION: tuple[str, ...] = ("3dbenchy.gcode", "phone-stand.gcode", "calibration-cube.gcode")


def print_file_bytes(spec: PrintFileSpec) -> bytes:
    """A small, valid-looking G-code file whose first line sets the simulator's timing."""
    lines = [
        f"; ensemble print_seconds={spec.print_seconds} layers={spec.layers}",
        f"; {spec.name}: Ensemble demo print (simulated printer)",
        "G28 ; home all axes",
        "M104 S215",
        "M140 S60",
    ]
    per_layer = max(1, spec.lines // spec.layers)
    for n in range(spec.lines):
        if n % per_layer == 0:
            lines.append(f"G1 Z{0.2 * (n // per_layer + 1):.2f} F600")
        x = 60 + 40 * ((n * 37) % 100) / 100
        y = 60 + 40 * ((n * 53) % 100) / 100
        lines.append(f"G1 X{x:.2f} Y{y:.2f} E{0.03 * (n + 1):.4f} F1800")
    lines.append("M104 S0")
    lines.append("M140 S0")
    return ("\n".join(lines) + "\n").encode("ascii")
