"""The OPC UA connector: a printer reached with asyncua on the agent's asyncio thread.

The node map (``[printers.opcua]`` in the config; defaults match the
simulator) names the variables to subscribe to and the methods to call.
Data changes arrive on the asyncio thread and cross into trio through a
bounded channel; every call (connect, read, method) is one bridge crossing.

Liveness: besides the subscription, the connector reads the state node every
``poll_s``; a failed read (or a failed subscription) means the connection is
gone, and the connector reports ``connected=False`` and reconnects with
backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import trio

from ensemble.bridge import AsyncioBridge, BridgeChannel
from ensemble.hubs.agent._config import PrinterConfig
from ensemble.hubs.agent._connector import CommandFailed, Connector, PrinterSink, Progress
from ensemble.hubs.protocol import ConnectionType

__all__ = ["OpcUaConnector", "normalize_field"]

log = logging.getLogger("ensemble.hubs.agent.opcua")

CHUNK_BYTES = 32 * 1024
_INT_FIELDS = ("remaining_s", "layer", "total_layers")
_FLOAT_FIELDS = ("nozzle_temp", "nozzle_target", "bed_temp", "bed_target")


def normalize_field(field: str, value: Any, states: dict[str, str]) -> tuple[str, Any]:
    """One raw OPC UA value as a normalized ``printer_status`` field."""
    if field == "state":
        return "status", states.get(str(value), "error" if value is not None else "offline")
    if value is None:
        return field, None
    if field in ("job_id", "error_code"):
        text = str(value)
        return field, text or None
    if field == "progress":
        number = float(value)
        return field, None if math.isnan(number) else max(0, min(100, int(number)))
    if field in _INT_FIELDS:
        return field, max(0, int(value))
    if field in _FLOAT_FIELDS:
        number = float(value)
        return field, None if math.isnan(number) else round(number, 2)
    return field, value


class _Handler:
    """asyncua subscription handler (runs on the asyncio thread).

    asyncua calls ``datachange_notification`` once per item, all items of one
    publish in a row; they are gathered and cross into trio as *one* batch, so
    the agent never sees half of a device update (a state without the
    progress that came with it).
    """

    def __init__(self, fields: dict[Any, str], channel: BridgeChannel) -> None:
        self.fields = fields
        self.channel = channel
        self._batch: dict[str, Any] = {}
        self._scheduled = False

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        field = self.fields.get(node.nodeid)
        if field is None:
            return
        self._batch[field] = val
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        batch, self._batch, self._scheduled = self._batch, {}, False
        self.channel.send_threadsafe(("batch", batch))

    def status_change_notification(self, status: Any) -> None:
        self.channel.send_threadsafe(("lost", status))


class OpcUaConnector(Connector):
    connection_type = ConnectionType.OPCUA

    def __init__(
        self,
        config: PrinterConfig,
        bridge: AsyncioBridge,
        *,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 10.0,
        poll_s: float = 2.0,
        publish_ms: int = 100,
    ) -> None:
        self.printer_id = config.printer_id
        self.name = config.name
        self.model = config.model
        self.endpoint = config.endpoint
        self.node_map = config.opcua
        self.bridge = bridge
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.poll_s = poll_s
        self.publish_ms = publish_ms
        self._client: Any = None
        self._object: Any = None
        self._methods: dict[str, Any] = {}
        self._state_node: Any = None
        self._lock = trio.Lock()  # one device call at a time
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    # -- asyncio side -------------------------------------------------------------

    def _node_id(self, text: str, ns: int) -> Any:
        from asyncua import ua

        if text.startswith(("ns=", "i=", "s=", "g=", "b=")):
            return ua.NodeId.from_string(text)
        return ua.NodeId(text, ns)

    async def _connect(self, channel: BridgeChannel) -> dict[str, Any]:
        from asyncua import Client

        client = Client(url=self.endpoint, timeout=4)
        await client.connect()
        try:
            ns = await client.get_namespace_index(self.node_map.namespace)
            nodes = {field: client.get_node(self._node_id(text, ns)) for field, text in self.node_map.nodes.items()}
            self._object = client.get_node(self._node_id(self.node_map.object, ns))
            self._methods = {name: self._node_id(text, ns) for name, text in self.node_map.methods.items()}
            self._state_node = nodes["state"]
            values = await client.read_values(list(nodes.values()))
            handler = _Handler({node.nodeid: field for field, node in nodes.items()}, channel)
            subscription = await client.create_subscription(self.publish_ms, handler)
            await subscription.subscribe_data_change(list(nodes.values()))
        except BaseException:
            await _quietly(client.disconnect())
            raise
        self._client = client
        return dict(zip(nodes, values))

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _quietly(client.disconnect())

    async def _ping(self) -> Any:
        return await self._state_node.read_value()

    async def _call(self, method: str, *args: Any) -> Any:
        if self._client is None:
            raise ConnectionError("not connected")
        return await self._object.call_method(self._methods[method], *args)

    # -- trio side ----------------------------------------------------------------

    def _normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for field, value in raw.items():
            name, normalized = normalize_field(field, value, self.node_map.states)
            out[name] = normalized
        return out

    async def run(self, sink: PrinterSink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        delay = self.reconnect_initial_s
        started = False
        while True:
            channel = self.bridge.open_channel(4096)
            try:
                initial = await self.bridge.run(self._connect, channel)
            except Exception as exc:
                log.info("printer %s: cannot connect to %s: %r", self.printer_id, self.endpoint, exc)
            else:
                delay = self.reconnect_initial_s
                self._connected = True
                sink.update(self.printer_id, self._normalize(initial))
                sink.connected(self.printer_id, True)
                if not started:
                    started = True
                    task_status.started()
                try:
                    await self._pump(sink, channel)
                except Exception as exc:
                    log.info("printer %s: connection lost: %r", self.printer_id, exc)
                finally:
                    self._connected = False
                    sink.connected(self.printer_id, False)
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await self.bridge.run(self._disconnect)
            if not started:
                started = True
                task_status.started()
            await trio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)

    async def _pump(self, sink: PrinterSink, channel: BridgeChannel) -> None:
        while True:
            with trio.move_on_after(self.poll_s) as timeout:
                kind, payload = await channel.receive.receive()
                if kind == "lost":
                    raise ConnectionError(f"subscription status {payload}")
                sink.update(self.printer_id, self._normalize(payload))
            if timeout.cancelled_caught:
                async with self._lock:
                    with trio.fail_after(self.poll_s * 2 + 4):
                        await self.bridge.run(self._ping)

    async def _device(self, method: str, *args: Any) -> Any:
        from asyncua import ua

        if not self._connected:
            raise CommandFailed("the printer is not connected", "printer_offline")
        async with self._lock:
            try:
                with trio.fail_after(30):
                    return await self.bridge.run(self._call, method, *args)
            except ua.UaStatusCodeError as exc:
                raise CommandFailed(f"printer refused {method}: {exc}", "device_refused") from None
            except (ConnectionError, OSError, ua.UaError, trio.TooSlowError) as exc:
                raise CommandFailed(f"printer unreachable during {method}: {exc!r}", "printer_offline") from None

    async def upload(self, file_name: str, data: bytes, progress: Progress) -> None:
        from asyncua import ua

        total = len(data)
        offset = 0
        progress(0, total)
        while offset < total or offset == 0:
            chunk = data[offset: offset + CHUNK_BYTES]
            await self._device("upload_chunk", ua.Variant(file_name, ua.VariantType.String),
                               ua.Variant(offset, ua.VariantType.UInt64), ua.Variant(chunk, ua.VariantType.ByteString))
            offset += len(chunk)
            progress(offset, total)
            if not chunk:
                break

    async def start_print(self, job_id: str, file_name: str) -> None:
        from asyncua import ua

        ok = await self._device("start", ua.Variant(job_id, ua.VariantType.String),
                                ua.Variant(file_name, ua.VariantType.String))
        if ok is False:
            raise CommandFailed("the printer did not start the job", "device_refused")

    async def control(self, action: str, job_id: str | None) -> None:
        if action not in ("pause", "resume", "stop"):
            raise CommandFailed(f"unknown action {action!r}", "unsupported")
        ok = await self._device(action)
        if ok is False:
            raise CommandFailed(f"the printer did not {action}", "device_refused")


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:  # the connection is being dropped anyway
        pass
