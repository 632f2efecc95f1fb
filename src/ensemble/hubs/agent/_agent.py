"""The hub agent: printers on one side, the Ensemble gateway on the other.

Theory of operation
-------------------
Four kinds of task run in one nursery:

* one **connector** per printer (``_connector.py``) keeps its device
  connected and reports normalized fields to the agent (the sink);
* the **status loop** turns those fields into ``printer_status`` events,
  at once when the status or job changes, else at most every
  ``status.interval_s`` and at least every ``status.keepalive_s``;
* one **command worker** per printer runs that printer's commands one at a
  time, in the order the cloud sent them (a stop after a print runs after it);
* the **connection loop** keeps one WebSocket to the gateway: it signs a
  ``hub_hello`` (HMAC over hub id, time and a fresh nonce), waits for
  ``hub_welcome``, then runs a sender (outbox → socket, in ``seq`` order), a
  receiver (commands, ``seq_ack``, pings) and heartbeats, until the socket
  breaks; then it waits an exponential backoff with jitter and starts over.

Every event goes through the durable outbox (``_outbox.py``) whether or not
the socket is up, so disconnection needs no special path: the outbox grows
(bounded), and the next session replays it from the cloud's ``last_seq``.

Commands run at most once: ``CommandDeduplicator`` (from the shared
protocol) remembers every command id with its ack, persisted in the outbox
database, so a command the cloud re-sends after a reconnect is answered with
the recorded ack instead of being run again.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import trio
import trio_websocket

from ensemble.bridge import AsyncioBridge, open_bridge
from ensemble.hubs.agent._config import AgentConfig
from ensemble.hubs.agent._connector import CommandFailed, Connector
from ensemble.hubs.agent._outbox import Outbox
from ensemble.hubs.agent._transfer import download, resolve_url
from ensemble.hubs.protocol import (
    TO_HUB,
    AuthError,
    CommandAck,
    ConfigurePrinter,
    Disconnect,
    DiscoverPrinters,
    Error,
    FileProgress,
    Heartbeat,
    HubHello,
    HubWelcome,
    Message,
    Ping,
    Pong,
    PrintCommand,
    PrinterCommand,
    PrinterConnected,
    PrinterDisconnected,
    PrinterDiscovered,
    PrinterState,
    PrinterStatus,
    SeqAck,
    TransferPhase,
    CommandDeduplicator,
    decode,
    encode,
    from_wire,
    new_nonce,
    sign_hello,
)

__all__ = ["HubAgent", "AuthRefused", "make_connectors"]

log = logging.getLogger("ensemble.hubs.agent")

HELLO_TIMEOUT_S = 10.0
PROGRESS_INTERVAL_S = 0.25
SETTLE_S = 2.0
_COMMANDED = {"pause": "paused", "resume": "printing", "stop": "idle"}
_STATUS_FIELDS = ("job_id", "progress", "remaining_s", "layer", "total_layers", "nozzle_temp", "nozzle_target",
                  "bed_temp", "bed_target", "error_code")


class AuthRefused(Exception):
    """The gateway answered the hello with ``auth_error``."""


class _Handshaking(Exception):
    """No WebSocket came up (refused, timed out, rejected); the cause says why."""


def _classify(exc: BaseException) -> str | None:
    """``handshake``/``refused``/``link`` for the ways a connection ends, None for anything else."""
    if isinstance(exc, BaseExceptionGroup):  # noqa: F821 - builtin on 3.11
        kinds = {_classify(e) for e in exc.exceptions}
        if None in kinds:
            return None
        return "refused" if "refused" in kinds else "handshake" if "handshake" in kinds else "link"
    if isinstance(exc, _Handshaking):
        return "handshake"
    if isinstance(exc, AuthRefused):
        return "refused"
    if isinstance(exc, _LINK_ERRORS):
        return "link"
    return None


_LINK_ERRORS = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
    trio.TooSlowError,
    ValueError,
)


def make_connectors(config: AgentConfig, bridge: AsyncioBridge | None) -> list[Connector]:
    from ensemble.hubs.agent._opcua import OpcUaConnector

    out: list[Connector] = []
    for printer in config.printers:
        if printer.connector == "opcua":
            assert bridge is not None
            out.append(OpcUaConnector(printer, bridge))
        else:  # _config refuses unknown connectors; this guards programmatic configs
            raise ValueError(f"unknown connector {printer.connector!r}")
    return out


@dataclasses.dataclass
class _PrinterView:
    connected: bool = False
    announced: bool | None = None  # last printer_connected/disconnected sent
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    dirty: bool = False
    urgent: bool = False
    last_emit: float = float("-inf")
    # After a command the device accepted: the status it will report, until when
    # (see HubAgent.expect_status), and a contradicting status held meanwhile.
    expect: tuple[str, float] | None = None
    held: str | None = None


class HubAgent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        connectors: Sequence[Connector] | None = None,
        queue_size: int = 64,
    ) -> None:
        self.config = config
        self._given_connectors = connectors
        self.connectors: dict[str, Connector] = {}
        self.queue_size = queue_size
        self.printers: dict[str, _PrinterView] = {}
        self.outbox: Outbox | None = None
        self.dedup = CommandDeduplicator(1024)
        self.online = False  # the link to the gateway
        self.welcome: HubWelcome | None = None
        self.claim_code: str | None = None
        self.last_error: str | None = None
        self.connections = 0
        self.duplicates = 0
        self.commands_run = 0
        self._started_at = time.monotonic()
        self._status_wakeup = trio.Event()
        self._changed = trio.Event()
        self._workers: dict[str, trio.MemorySendChannel[Message]] = {}
        self._sent_upto = -1
        self._progress_at: dict[tuple[str, str], float] = {}
        self._retry_after: float | None = None
        self._session_started = False

    # -- waiting (for tests and tools) ------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Any) -> None:
        """Until ``predicate(agent)`` is true (re-checked whenever the agent's state changes)."""
        while not predicate(self):
            changed = self._changed
            with trio.move_on_after(0.2):
                await changed.wait()

    def statistics(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "connections": self.connections,
            "outbox": len(self.outbox) if self.outbox is not None else 0,
            "outbox_dropped": self.outbox.dropped if self.outbox is not None else 0,
            "next_seq": self.outbox.next_seq if self.outbox is not None else 0,
            "commands_run": self.commands_run,
            "duplicate_commands": self.duplicates,
            "printers": {pid: {"connected": v.connected, **v.fields} for pid, v in self.printers.items()},
        }

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus["HubAgent"] = trio.TASK_STATUS_IGNORED) -> None:
        self.outbox = Outbox(self.config.state_dir / "outbox.sqlite3", max_events=self.config.outbox_max_events)
        try:
            needs_bridge = self._given_connectors is None and any(
                p.connector == "opcua" for p in self.config.printers
            )
            if needs_bridge:
                async with open_bridge() as bridge:
                    await self._run(make_connectors(self.config, bridge), task_status)
            else:
                await self._run(list(self._given_connectors or ()), task_status)
        finally:
            self.outbox.close()

    async def _run(self, connectors: list[Connector], task_status: trio.TaskStatus["HubAgent"]) -> None:
        assert self.outbox is not None
        self.connectors = {c.printer_id: c for c in connectors}
        self.printers = {c.printer_id: _PrinterView() for c in connectors}
        done, interrupted = self.outbox.remembered_commands()
        self.dedup = CommandDeduplicator(1024, completed=done)
        for command_id in interrupted:
            self.dedup.begin(command_id)
            self._finish(command_id, False, "interrupted by a restart of the hub agent", "interrupted")
        async with trio.open_nursery() as nursery:
            for connector in connectors:
                send, receive = trio.open_memory_channel[Message](self.queue_size)
                self._workers[connector.printer_id] = send
                nursery.start_soon(self._command_worker, connector, receive)
                await nursery.start(connector.run, self.sink)
            nursery.start_soon(self._status_loop)
            task_status.started(self)
            await self._connection_loop()

    # -- the sink (connectors report here, through ``self.sink``) ----------------------------

    @property
    def sink(self) -> "_Sink":
        return _Sink(self)

    def printer_connected(self, printer_id: str, up: bool) -> None:
        view = self.printers.setdefault(printer_id, _PrinterView())
        view.connected = up
        if view.announced is up:
            return
        view.announced = up
        assert self.outbox is not None
        now = _ms()
        if up:
            self.outbox.add(lambda seq: PrinterConnected(seq=seq, printer_id=printer_id, ts=now))
            view.urgent = view.dirty = True
        else:
            self.outbox.add(lambda seq: PrinterDisconnected(seq=seq, printer_id=printer_id, ts=now,
                                                            reason="device connection lost"))
        self._status_wakeup.set()
        self._notify()

    def printer_update(self, printer_id: str, fields: dict[str, Any]) -> None:
        view = self.printers.setdefault(printer_id, _PrinterView())
        before = (view.fields.get("status"), view.fields.get("job_id"))
        if view.expect is not None and "status" in fields:
            expected, until = view.expect
            if fields["status"] == expected:
                view.expect, view.held = None, None
            elif trio.current_time() < until:
                # Still the state from before the command (an update already
                # on its way): hold it rather than report a step backwards.
                view.held = fields["status"]
                fields = {k: v for k, v in fields.items() if k != "status"}
        view.fields.update(fields)
        view.dirty = True
        if (view.fields.get("status"), view.fields.get("job_id")) != before:
            view.urgent = True
        self._status_wakeup.set()

    def expect_status(self, printer_id: str, status: str, **fields: Any) -> None:
        """The device accepted a command that puts it in ``status``.

        Devices publish their new state a little after they accept a command,
        and an update from just before may still be on its way.  Reporting
        that one after the command's ack would make the cloud's job go, say,
        paused -> printing -> paused.  So the agent reports the commanded
        state at once, and for ``SETTLE_S`` holds back device updates that
        still show another state; if the device has not confirmed by then,
        the last held state is reported after all.
        """
        view = self.printers.setdefault(printer_id, _PrinterView())
        view.fields.update(status=status, **fields)
        view.expect, view.held = (status, trio.current_time() + SETTLE_S), None
        view.urgent = view.dirty = True
        self._status_wakeup.set()

    def _settle(self, view: _PrinterView, now: float) -> None:
        if view.expect is not None and now >= view.expect[1]:
            if view.held is not None and view.held != view.fields.get("status"):
                view.fields["status"] = view.held
                view.urgent = view.dirty = True
            view.expect, view.held = None, None

    # -- status ------------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        interval = self.config.status_interval_s
        keepalive = self.config.status_keepalive_s
        while True:
            now = trio.current_time()
            wake_at = now + keepalive
            for printer_id, view in self.printers.items():
                if not view.connected:
                    continue
                self._settle(view, now)
                if view.expect is not None:
                    wake_at = min(wake_at, view.expect[1])
                if view.urgent:
                    due = now
                elif view.dirty:
                    due = view.last_emit + interval
                else:
                    due = view.last_emit + keepalive
                if now >= due:
                    self._emit_status(printer_id, view)
                    view.last_emit = now
                    view.urgent = view.dirty = False
                    due = now + keepalive
                wake_at = min(wake_at, due)
            self._status_wakeup = trio.Event()
            with trio.move_on_at(max(wake_at, now + 0.005)):
                await self._status_wakeup.wait()

    def _emit_status(self, printer_id: str, view: _PrinterView) -> None:
        assert self.outbox is not None
        fields = {k: view.fields.get(k) for k in _STATUS_FIELDS if view.fields.get(k) is not None}
        status = view.fields.get("status") or "offline"
        now = _ms()
        try:
            self.outbox.add(lambda seq: PrinterStatus(seq=seq, printer_id=printer_id, status=PrinterState(status),
                                                      ts=now, **fields))
        except Exception as exc:  # a device value outside the protocol's ranges
            log.warning("printer %s: status not reportable: %s", printer_id, exc)
        self._notify()

    # -- the cloud link -------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        attempt = 0
        config = self.config
        while True:
            self._session_started = False
            try:
                await self._connect_once()
            except BaseException as exc:
                kind = _classify(exc)
                if kind is None:
                    raise  # cancellation, or a bug: not a network condition
                self.last_error = repr(exc)
                if kind == "refused":
                    log.error("the gateway refused this hub: %s", exc)
                else:
                    log.info("gateway connection %s: %r", "failed" if kind == "handshake" else "ended", exc)
            finally:
                if self.online:
                    self.online = False
                    self._notify()
            if self._session_started:
                attempt = 0  # it worked for a while: start the backoff over
            delay = min(config.backoff_max_s, config.backoff_initial_s * (2 ** min(attempt, 30)))
            # "Equal jitter": at least half the backoff, so a fleet of hubs
            # restarting together spreads out without ever spinning.
            delay = delay / 2 + random.uniform(0, delay / 2)
            if self._retry_after is not None:
                delay, self._retry_after = max(delay, self._retry_after), None
            attempt += 1
            await trio.sleep(delay)

    async def _connect_once(self) -> None:
        """One connection, from TCP connect to the end of the session.

        The agent opens (and always closes) the TCP stream itself and hands it
        to trio-websocket: version 0.12 leaves the stream open when the
        handshake fails or the server closes first.
        """
        config = self.config
        parts = urlsplit(config.url)
        secure = parts.scheme == "wss"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if secure else 80)
        resource = parts.path + (f"?{parts.query}" if parts.query else "")
        stream: trio.abc.Stream | None = None
        try:
            try:
                with trio.fail_after(config.connect_timeout_s):
                    if secure:
                        stream = await trio.open_ssl_over_tcp_stream(host, port, https_compatible=True)
                    else:
                        stream = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError) as exc:
                raise _Handshaking() from exc
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(config.connect_timeout_s):
                        ws = await trio_websocket.wrap_client_stream(
                            nursery, stream, parts.netloc, resource,
                            subprotocols=[f"ensemble.{config.format}"],
                        )
                except (*_LINK_ERRORS,) as exc:
                    raise _Handshaking() from exc
                try:
                    welcome = await self._handshake(ws)
                    await self._session(ws, welcome)
                finally:
                    with trio.CancelScope(shield=True), trio.move_on_after(2):
                        await ws.aclose()
                    nursery.cancel_scope.cancel()
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    def _encode(self, message: Message) -> str | bytes:
        return encode(message, self.config.format)

    async def _handshake(self, ws: trio_websocket.WebSocketConnection) -> HubWelcome:
        assert self.outbox is not None
        config = self.config
        timestamp, nonce = int(time.time()), new_nonce()
        hello = HubHello(
            hub_id=config.hub_id,
            firmware=config.firmware,
            timestamp=timestamp,
            nonce=nonce,
            signature=sign_hello(config.hub_id, config.secret, timestamp, nonce),
            stream_id=self.outbox.stream_id,
            capabilities=("store_and_forward", "opcua"),
            printers=tuple(c.info() for c in self.connectors.values()),
        )
        await ws.send_message(self._encode(hello))
        with trio.fail_after(HELLO_TIMEOUT_S):
            data = await ws.get_message()
        reply = decode(data, config.format, accept=TO_HUB)
        if isinstance(reply, AuthError):
            raise AuthRefused(reply.message)
        if not isinstance(reply, HubWelcome):
            raise ValueError(f"expected hub_welcome, got {reply.type}")
        return reply

    async def _session(self, ws: trio_websocket.WebSocketConnection, welcome: HubWelcome) -> None:
        assert self.outbox is not None
        self.welcome = welcome
        self.claim_code = welcome.claim_code
        if welcome.claim_code:
            log.warning("hub %s is not claimed: claim it with code %s", self.config.hub_id, welcome.claim_code)
        self._session_started = True
        self.outbox.acknowledge(welcome.last_seq)
        self._sent_upto = welcome.last_seq
        self.online = True
        self.connections += 1
        self.last_error = None
        self._notify()
        log.info("connected to %s (last_seq=%s, claimed=%s)", self.config.url, welcome.last_seq, welcome.claimed)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sender, ws)
            nursery.start_soon(self._heartbeats, ws, welcome.heartbeat_s)
            await self._receiver(ws)
            nursery.cancel_scope.cancel()

    async def _sender(self, ws: trio_websocket.WebSocketConnection) -> None:
        assert self.outbox is not None
        while True:
            changed = self.outbox.changed
            batch = self.outbox.pending(self._sent_upto)
            if not batch:
                await changed.wait()
                continue
            for wire in batch:
                await ws.send_message(self._encode(from_wire(wire)))
                self._sent_upto = wire["seq"]

    async def _heartbeats(self, ws: trio_websocket.WebSocketConnection, every_s: int) -> None:
        assert self.outbox is not None
        while True:
            await trio.sleep(every_s)
            beat = Heartbeat(ts=_ms(), uptime_s=int(time.monotonic() - self._started_at), backlog=len(self.outbox))
            await ws.send_message(self._encode(beat))

    async def _receiver(self, ws: trio_websocket.WebSocketConnection) -> None:
        assert self.outbox is not None
        while True:
            data = await ws.get_message()
            try:
                message = decode(data, self.config.format, accept=TO_HUB)
            except Exception as exc:
                log.warning("unreadable frame from the gateway: %s", exc)
                continue
            if isinstance(message, SeqAck):
                self.outbox.acknowledge(message.seq)
                self._notify()
            elif isinstance(message, (PrintCommand, PrinterCommand)):
                self._dispatch(message)
            elif isinstance(message, ConfigurePrinter):
                self._refuse_unsupported(message.command_id, "printers are configured in the agent's config file")
            elif isinstance(message, DiscoverPrinters):
                if self.dedup.begin(message.command_id):
                    now = _ms()
                    self.outbox.add(lambda seq: PrinterDiscovered(seq=seq, printers=(), ts=now,
                                                                  command_id=message.command_id))
                    self._finish(message.command_id, True)
            elif isinstance(message, Ping):
                await ws.send_message(self._encode(Pong(ts=message.ts)))
            elif isinstance(message, Disconnect):
                log.info("the gateway asks us to disconnect: %s %s", message.code, message.message)
                self._retry_after = float(message.retry_after_s) if message.retry_after_s is not None else None
                return
            elif isinstance(message, Error):
                log.warning("the gateway refused a message: %s %s", message.code, message.message)

    # -- commands -------------------------------------------------------------------------------

    def _refuse_unsupported(self, command_id: str, why: str) -> None:
        if self.dedup.begin(command_id):
            self._finish(command_id, False, why, "unsupported")

    def _dispatch(self, command: PrintCommand | PrinterCommand) -> None:
        assert self.outbox is not None
        command_id = command.command_id
        if not self.dedup.begin(command_id):
            self.duplicates += 1
            ack = self.dedup.ack_for(command_id)
            if ack is not None:  # already ran: answer again, never run again
                now = _ms()
                self.outbox.add(lambda seq: dataclasses.replace(ack, seq=seq, ts=now))
            return  # still running: its ack is on the way
        self.outbox.command_started(command_id)
        worker = self._workers.get(command.printer_id)
        if worker is None:
            self._finish(command_id, False, f"no printer {command.printer_id} on this hub", "unknown_printer")
            return
        try:
            worker.send_nowait(command)
        except trio.WouldBlock:
            self._finish(command_id, False, "the hub has too many commands queued for this printer", "busy")

    def _finish(self, command_id: str, success: bool, error: str | None = None, code: str | None = None) -> None:
        assert self.outbox is not None
        now = _ms()
        ack = self.outbox.add(lambda seq: CommandAck(seq=seq, command_id=command_id, success=success, ts=now,
                                                     error=error, error_code=code))
        assert isinstance(ack, CommandAck)
        self.dedup.complete(ack)
        self.outbox.command_done(ack)
        self._notify()

    async def _command_worker(self, connector: Connector, commands: trio.MemoryReceiveChannel[Message]) -> None:
        async for command in commands:
            assert isinstance(command, (PrintCommand, PrinterCommand))
            try:
                if isinstance(command, PrintCommand):
                    await self._print(connector, command)
                else:
                    self._check_job(connector.printer_id, command)
                    await connector.control(command.action.value, command.job_id)
                    self.expect_status(connector.printer_id, _COMMANDED[command.action.value])
            except CommandFailed as exc:
                log.info("command %s failed: %s", command.command_id, exc.message)
                self._finish(command.command_id, False, exc.message, exc.code)
            except Exception as exc:
                log.exception("command %s crashed", command.command_id)
                self._finish(command.command_id, False, f"hub error: {exc!r}", "hub_error")
            else:
                self.commands_run += 1
                self._finish(command.command_id, True)

    def _check_job(self, printer_id: str, command: PrinterCommand) -> None:
        view = self.printers.get(printer_id)
        running = view.fields.get("job_id") if view else None
        busy = view is not None and view.fields.get("status") in ("printing", "paused")
        if command.job_id is not None and busy and running not in (None, command.job_id):
            raise CommandFailed(f"another job ({running}) is running on this printer", "job_mismatch")

    async def _print(self, connector: Connector, command: PrintCommand) -> None:
        if not connector.is_connected:
            raise CommandFailed("the printer is not connected", "printer_offline")
        url = resolve_url(command.file_url, self.config.http_origin)
        data = await download(
            url, expected_size=command.file_size, sha256=command.sha256,
            progress=lambda sent, total: self._progress(command, TransferPhase.DOWNLOADING, sent, total),
        )
        await connector.upload(
            command.file_name, data,
            lambda sent, total: self._progress(command, TransferPhase.UPLOADING, sent, total),
        )
        await connector.start_print(command.job_id, command.file_name)
        self.expect_status(connector.printer_id, "printing", job_id=command.job_id, progress=0)

    def _progress(self, command: PrintCommand, phase: TransferPhase, sent: int, total: int) -> None:
        assert self.outbox is not None
        key = (command.command_id, phase.value)
        now = time.monotonic()
        if sent < total and now - self._progress_at.get(key, float("-inf")) < PROGRESS_INTERVAL_S:
            return
        self._progress_at[key] = now
        ts = _ms()
        self.outbox.add(lambda seq: FileProgress(
            seq=seq, job_id=command.job_id, printer_id=command.printer_id, phase=phase,
            bytes_sent=min(sent, total), bytes_total=total, ts=ts, command_id=command.command_id,
        ))


class _Sink:
    """What connectors report to (see ``Connector.run``)."""

    def __init__(self, agent: HubAgent) -> None:
        self._agent = agent

    def connected(self, printer_id: str, up: bool) -> None:
        self._agent.printer_connected(printer_id, up)

    def update(self, printer_id: str, fields: dict[str, Any]) -> None:
        self._agent.printer_update(printer_id, fields)


def _ms() -> int:
    return int(time.time() * 1000)
