"""The simulated printer as an OPC UA server (asyncua), and a thread to run it from trio.

Address space (namespace ``urn:ensemble:printer-simulator``), under ``Objects``::

    Printer                         (object, string id "Printer")
      State         Int32           0 idle 1 heating 2 printing 3 paused 4 finished 5 error 6 stopped
      JobId, FileName, ErrorCode    String
      Progress                      Double  0..100
      RemainingTime, CurrentLayer, TotalLayers   UInt32
      NozzleTemp, NozzleTarget, BedTemp, BedTarget   Double (°C)
      WriteFileChunk(name: String, offset: UInt64, data: ByteString) -> UInt32
      StartPrint(job_id: String, file_name: String) -> Boolean
      Pause() / Resume() / Stop() / ClearError() -> Boolean
      InjectFailure(code: String) -> Boolean

Variables have the string ids ``Printer.<Name>``; this is the default node
map of the agent's OPC UA connector.  A command the printer refuses answers
``BadInvalidState`` with the reason.  The server listens on 127.0.0.1 unless
told otherwise and allows anonymous, unencrypted sessions: it is a bench
and test device.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ensemble.hubs.simulator._model import PrinterModel, PrintSettings, SimulatorError

__all__ = ["NAMESPACE", "serve_simulator", "SimulatorThread", "free_port"]

NAMESPACE = "urn:ensemble:printer-simulator"
log = logging.getLogger("ensemble.hubs.simulator")

_VARIABLES = (
    # (name, model attribute, variant type name)
    ("State", "state", "Int32"),
    ("JobId", "job_id", "String"),
    ("FileName", "file_name", "String"),
    ("Progress", "progress", "Double"),
    ("RemainingTime", "remaining_s", "UInt32"),
    ("CurrentLayer", "layer", "UInt32"),
    ("TotalLayers", "total_layers", "UInt32"),
    ("NozzleTemp", "nozzle_temp", "Double"),
    ("NozzleTarget", "nozzle_target", "Double"),
    ("BedTemp", "bed_temp", "Double"),
    ("BedTarget", "bed_target", "Double"),
    ("ErrorCode", "error_code", "String"),
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def serve_simulator(
    model: PrinterModel,
    *,
    host: str = "127.0.0.1",
    port: int = 4840,
    tick_s: float = 0.1,
    name: str = "Ensemble printer simulator",
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``model`` until ``stop`` is set (or forever); ``ready(endpoint)`` once listening."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    endpoint = f"opc.tcp://{host}:{port}/ensemble/printer"
    server.set_endpoint(endpoint)
    server.set_server_name(name)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE)
    printer = await server.nodes.objects.add_object(ua.NodeId("Printer", idx), ua.QualifiedName("Printer", idx))
    nodes: dict[str, tuple[Any, str, Any]] = {}
    for label, attribute, kind in _VARIABLES:
        variant = getattr(ua.VariantType, kind)
        node = await printer.add_variable(
            ua.NodeId(f"Printer.{label}", idx), ua.QualifiedName(label, idx), ua.Variant(_value(model, attribute, kind),
                                                                                          variant)
        )
        nodes[attribute] = (node, kind, variant)

    def guarded(action: Callable[..., Any], output: Any) -> Callable[..., Any]:
        # A coroutine function: asyncua runs plain functions in a thread pool,
        # which would race the tick loop over the model.
        async def call(parent: Any, *args: Any) -> Any:
            try:
                result = action(*[arg.Value for arg in args])
            except SimulatorError as exc:
                log.info("refused: %s", exc)
                return ua.StatusCode(ua.StatusCodes.BadInvalidState)
            except (TypeError, ValueError) as exc:
                log.info("bad arguments: %s", exc)
                return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            return [ua.Variant(result, output)]

        return call

    def write_chunk(name_: str, offset: int, data: bytes) -> int:
        return model.write_chunk(str(name_), int(offset), bytes(data or b""))

    def start(job_id: str, file_name: str) -> bool:
        model.start(str(job_id), str(file_name))
        return True

    def simple(method: Callable[[], None]) -> Callable[[], bool]:
        def run() -> bool:
            method()
            return True

        return run

    def inject(code: str) -> bool:
        model.fail(str(code or ""))
        return True

    methods = (
        ("WriteFileChunk", write_chunk, [ua.VariantType.String, ua.VariantType.UInt64, ua.VariantType.ByteString],
         ua.VariantType.UInt32),
        ("StartPrint", start, [ua.VariantType.String, ua.VariantType.String], ua.VariantType.Boolean),
        ("Pause", simple(model.pause), [], ua.VariantType.Boolean),
        ("Resume", simple(model.resume), [], ua.VariantType.Boolean),
        ("Stop", simple(model.stop), [], ua.VariantType.Boolean),
        ("ClearError", simple(model.clear_error), [], ua.VariantType.Boolean),
        ("InjectFailure", inject, [ua.VariantType.String], ua.VariantType.Boolean),
    )
    for label, fn, inputs, output in methods:
        await printer.add_method(ua.NodeId(f"Printer.{label}", idx), ua.QualifiedName(label, idx),
                                 guarded(fn, output), inputs, [output])

    written: dict[str, Any] = {attribute: _value(model, attribute, kind) for attribute, (_, kind, _) in nodes.items()}

    async with server:
        if ready is not None:
            ready(endpoint)
        last = time.monotonic()
        while stop is None or not stop.is_set():
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            model.tick(now - last)
            last = now
            # Write every changed value of this tick before yielding to the
            # publisher, so a subscriber sees one coherent state per tick; the
            # state goes last, after the progress and job that explain it.
            for attribute, (node, kind, variant) in sorted(nodes.items(), key=lambda item: item[0] == "state"):
                value = _value(model, attribute, kind)
                if written[attribute] != value:
                    written[attribute] = value
                    await node.write_value(ua.Variant(value, variant))


def _value(model: PrinterModel, attribute: str, kind: str) -> Any:
    value = getattr(model, attribute)
    if kind == "Double":
        return round(float(value), 2)
    if kind in ("Int32", "UInt32"):
        return int(value)
    return str(value)


class SimulatorThread:
    """Run a simulated printer in a background thread (for trio tests and demos).

    ``start()`` blocks until the server listens and returns its endpoint;
    ``stop()`` shuts it down.  :attr:`model` is shared with the server thread:
    read it freely; change it with :meth:`call` so the change happens on the
    server's loop.
    """

    def __init__(self, settings: PrintSettings | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 tick_s: float = 0.1) -> None:
        self.model = PrinterModel(settings)
        self.host = host
        self.port = port or free_port(host)
        self.tick_s = tick_s
        self.endpoint: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> str:
        ready = threading.Event()

        def on_ready(endpoint: str) -> None:
            self.endpoint = endpoint
            ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_simulator(self.model, host=self.host, port=self.port, tick_s=self.tick_s, ready=on_ready,
                                  stop=self._stop)

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # reported by start()
                self._error = exc
                ready.set()

        self._thread = threading.Thread(target=run, name="ensemble-printer-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self.endpoint is None:
            raise RuntimeError(f"the printer simulator did not start: {self._error!r}")
        return self.endpoint

    def call(self, fn: Callable[[PrinterModel], Any], timeout: float = 10.0) -> Any:
        """Run ``fn(model)`` on the server's loop and return its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(self.model)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        self._loop = None
