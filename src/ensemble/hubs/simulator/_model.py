"""A 3D printer as a small state machine, advanced by ``tick(dt)`` (time passed in).

States (the ``State`` variable's values)::

    0 idle ──start──► 1 heating ──temperatures reached──► 2 printing ──done──► 4 finished
                        │   ▲                              │   ▲
                        pause resume                      pause resume
                        ▼   │                              ▼   │
                        3 paused ◄─────────────────────────┘   │
    stop (from 1/2/3) ──► 6 stopped        fail ──► 5 error     clear_error ──► 0 idle

``start`` is accepted from idle, finished, stopped (and error after
``clear_error``).  A print file may carry its own timing on its first line::

    ; ensemble print_seconds=6 layers=30

otherwise the simulator's defaults apply.  Every command that changed the
printer is appended to :attr:`PrinterModel.log`, which is how tests prove a
command ran exactly once on the device.
"""

from __future__ import annotations

import dataclasses
import math
import re

__all__ = ["PrinterModel", "PrintSettings", "SimulatorError", "STATE_NAMES", "IDLE", "HEATING", "PRINTING",
           "PAUSED", "FINISHED", "ERROR", "STOPPED"]

IDLE, HEATING, PRINTING, PAUSED, FINISHED, ERROR, STOPPED = range(7)
STATE_NAMES = {IDLE: "idle", HEATING: "heating", PRINTING: "printing", PAUSED: "paused", FINISHED: "finished",
               ERROR: "error", STOPPED: "stopped"}
_HEADER = re.compile(rb"^;\s*ensemble\s+(.*)$", re.MULTILINE)
_MAX_FILE_BYTES = 64 << 20


class SimulatorError(Exception):
    """The printer refuses a command in its current state."""


@dataclasses.dataclass(frozen=True)
class PrintSettings:
    print_seconds: float = 60.0
    heat_seconds: float = 5.0
    layers: int = 100
    nozzle_target: float = 215.0
    bed_target: float = 60.0
    ambient: float = 22.0


class PrinterModel:
    def __init__(self, settings: PrintSettings | None = None) -> None:
        self.settings = settings or PrintSettings()
        s = self.settings
        self.state = IDLE
        self.job_id = ""
        self.file_name = ""
        self.progress = 0.0
        self.layer = 0
        self.total_layers = 0
        self.remaining_s = 0
        self.nozzle_temp = s.ambient
        self.bed_temp = s.ambient
        self.nozzle_target = 0.0
        self.bed_target = 0.0
        self.error_code = ""
        self.files: dict[str, bytearray] = {}
        self.log: list[tuple[str, ...]] = []
        self._elapsed = 0.0
        self._job_seconds = s.print_seconds
        self._paused_from = PRINTING

    # -- commands ------------------------------------------------------------------

    def write_chunk(self, name: str, offset: int, data: bytes) -> int:
        if not name:
            raise SimulatorError("a file name is required")
        if offset == 0:
            self.files[name] = bytearray()
        buffer = self.files.get(name)
        if buffer is None or offset != len(buffer):
            raise SimulatorError(f"chunk at {offset} does not continue {name!r}")
        if len(buffer) + len(data) > _MAX_FILE_BYTES:
            raise SimulatorError("file too large for the printer's storage")
        buffer += data
        return len(data)

    def start(self, job_id: str, file_name: str) -> None:
        if self.state in (HEATING, PRINTING, PAUSED):
            raise SimulatorError(f"busy ({STATE_NAMES[self.state]})")
        if self.state == ERROR:
            raise SimulatorError(f"in error {self.error_code}: clear it first")
        data = self.files.get(file_name)
        if data is None:
            raise SimulatorError(f"no file {file_name!r} on the printer")
        seconds, layers = self.settings.print_seconds, self.settings.layers
        header = _HEADER.search(bytes(data[:512]))
        if header:
            for key, value in re.findall(rb"(\w+)=([0-9.]+)", header.group(1)):
                if key == b"print_seconds":
                    seconds = max(0.1, float(value))
                elif key == b"layers":
                    layers = max(1, int(float(value)))
        self.job_id, self.file_name = job_id, file_name
        self._job_seconds = seconds
        self.total_layers = layers
        self.progress, self.layer, self._elapsed = 0.0, 0, 0.0
        self.remaining_s = int(math.ceil(seconds))
        self.error_code = ""
        self.nozzle_target, self.bed_target = self.settings.nozzle_target, self.settings.bed_target
        self.state = HEATING
        self.log.append(("start", job_id, file_name))

    def pause(self) -> None:
        if self.state not in (HEATING, PRINTING):
            raise SimulatorError(f"cannot pause while {STATE_NAMES[self.state]}")
        self._paused_from = self.state
        self.state = PAUSED
        self.log.append(("pause", self.job_id))

    def resume(self) -> None:
        if self.state != PAUSED:
            raise SimulatorError(f"cannot resume while {STATE_NAMES[self.state]}")
        self.state = self._paused_from
        self.log.append(("resume", self.job_id))

    def stop(self) -> None:
        if self.state not in (HEATING, PRINTING, PAUSED):
            raise SimulatorError(f"nothing to stop ({STATE_NAMES[self.state]})")
        self.state = STOPPED
        self.nozzle_target = self.bed_target = 0.0
        self.log.append(("stop", self.job_id))

    def fail(self, code: str) -> None:
        self.state = ERROR
        self.error_code = code or "E_SIMULATED"
        self.nozzle_target = self.bed_target = 0.0
        self.log.append(("fail", self.job_id, self.error_code))

    def clear_error(self) -> None:
        if self.state == ERROR:
            self.state = IDLE
            self.error_code = ""
            self.log.append(("clear_error",))

    # -- time -----------------------------------------------------------------------

    def tick(self, dt: float) -> None:
        s = self.settings
        rate_nozzle = (s.nozzle_target - s.ambient) / max(s.heat_seconds, 0.01)
        rate_bed = (s.bed_target - s.ambient) / max(s.heat_seconds, 0.01)
        self.nozzle_temp = _approach(self.nozzle_temp, self.nozzle_target or s.ambient, rate_nozzle * dt)
        self.bed_temp = _approach(self.bed_temp, self.bed_target or s.ambient, rate_bed * dt)
        if self.state == HEATING:
            if abs(self.nozzle_temp - self.nozzle_target) < 1 and abs(self.bed_temp - self.bed_target) < 1:
                self.state = PRINTING
        elif self.state == PRINTING:
            self._elapsed += dt
            fraction = min(1.0, self._elapsed / self._job_seconds)
            self.progress = round(fraction * 100, 2)
            self.layer = max(1, int(math.ceil(fraction * self.total_layers)))
            self.remaining_s = max(0, int(math.ceil(self._job_seconds - self._elapsed)))
            if fraction >= 1.0:
                self.state = FINISHED
                self.progress, self.remaining_s = 100.0, 0
                self.nozzle_target = self.bed_target = 0.0

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "job_id": self.job_id,
            "file_name": self.file_name,
            "progress": self.progress,
            "remaining_s": self.remaining_s,
            "layer": self.layer,
            "total_layers": self.total_layers,
            "nozzle_temp": round(self.nozzle_temp, 2),
            "nozzle_target": self.nozzle_target,
            "bed_temp": round(self.bed_temp, 2),
            "bed_target": self.bed_target,
            "error_code": self.error_code,
        }


def _approach(value: float, target: float, step: float) -> float:
    if value < target:
        return min(target, value + step)
    return max(target, value - step)
