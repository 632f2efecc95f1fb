"""Helpers for the hubs tests: a gateway with the real-time lane, tenants, hubs, agents, dashboards.

``running_gateway`` runs what ``ensemble serve`` runs (services + Quart app
+ the real-time lane, one port on 127.0.0.1) and can be started again on the
same port, which the restart tests need.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket
from hypercorn.config import Config as HypercornConfig

from ensemble.config import Settings
from ensemble.gateway import create_app
from ensemble.gateway.realtime import RealtimeSettings, serve_gateway
from ensemble.hubs.agent import AgentConfig, HubAgent, PrinterConfig
from ensemble.hubs.protocol import derive_hub_key, generate_hub_credentials
from ensemble.persistence.repos import hubs as hubs_repo
from ensemble.server import Services, open_services
from tests.gateway.conftest import User
from tests.server import TEST_SETTINGS

PASSWORD = "correct horse battery"


@dataclass
class Gateway:
    url: str
    port: int
    services: Services

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30.0)


@asynccontextmanager
async def running_gateway(database_url: str, data_dir: Path, *, port: int = 0, **overrides: Any) -> AsyncIterator[Gateway]:
    values: dict[str, Any] = {
        **TEST_SETTINGS,
        "database_url": database_url,
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": port,
        "s3_endpoint": None,
        "jwt_secret": None,
        "signing_key": None,
    }
    values.update(overrides)
    settings = Settings(**values)
    async with open_services(settings) as services:
        app = create_app(services)
        config = HypercornConfig()
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        shutdown = trio.Event()
        realtime = RealtimeSettings(close_timeout_s=0.5)
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                lambda task_status: serve_gateway(
                    services, app, "127.0.0.1", port, shutdown_trigger=shutdown.wait, task_status=task_status,
                    realtime=realtime, config=config,
                )
            )
            url = urls[0]
            try:
                yield Gateway(url=url, port=int(url.rsplit(":", 1)[1]), services=services)
            finally:
                shutdown.set()


# An owner or member of one tenant, with a client that sends their token.
Tenant = User


async def signup(http: httpx.AsyncClient, name: str = "Print Farm") -> Tenant:
    email = f"owner-{uuid.uuid4().hex[:12]}@example.com"
    r = await http.post("/api/v1/auth/signup",
                        json={"email": email, "password": PASSWORD, "name": "Owner", "tenant_name": name})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    return User(http=http, email=email, user_id=data["user"]["id"], tenant_id=data["tenant_id"], role=data["role"],
                access_token=data["access_token"], refresh_token=data["refresh_token"])


async def member(owner: Tenant, role: str) -> Tenant:
    email = f"{role}-{uuid.uuid4().hex[:12]}@example.com"
    r = await owner.post("/api/v1/users", json={"email": email, "role": role, "name": role.title(), "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await owner.http.post("/api/v1/auth/login",
                              json={"email": email, "password": PASSWORD, "tenant_id": owner.tenant_id})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return User(http=owner.http, email=email, user_id=data["user"]["id"], tenant_id=data["tenant_id"],
                role=data["role"], access_token=data["access_token"], refresh_token=data["refresh_token"])


@dataclass
class ProvisionedHub:
    hub_id: str
    secret: str
    claim_code: str


async def provision_hub(services: Services) -> ProvisionedHub:
    """What ``ensemble hub provision`` does: id + secret, only the derived key stored."""
    creds = generate_hub_credentials()
    hub_uuid = uuid.UUID(creds.hub_id)
    await services.db.run(
        lambda conn: hubs_repo.provision(conn, hub_id=hub_uuid, hmac_key=derive_hub_key(creds.hub_id, creds.secret))
    )
    code, _ = await services.db.run(hubs_repo.issue_claim_code, hub_uuid, 600)
    return ProvisionedHub(creds.hub_id, creds.secret, code)


async def claim(owner: Tenant, hub: ProvisionedHub, name: str = "Bench hub") -> dict[str, Any]:
    r = await owner.post("/api/v1/hubs/claim", json={"claim_code": hub.claim_code, "name": name})
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def add_printer(owner: Tenant, hub_id: str | None, name: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"name": name or f"Printer {uuid.uuid4().hex[:6]}", "model": "SIM-1", "connection_type": "opcua",
            **({"hub_id": hub_id} if hub_id else {}), **extra}
    r = await owner.post("/api/v1/printers", json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def upload_print_file(owner: Tenant, *, print_seconds: float = 4.0, layers: int = 20,
                            size: int = 100_000, name: str = "part.gcode") -> dict[str, Any]:
    header = f"; ensemble print_seconds={print_seconds} layers={layers}\n".encode()
    body = header + b"G1 X0 Y0\n" * max(0, (size - len(header)) // 9)
    r = await owner.post("/api/v1/files", files={"file": (name, body, "text/plain")})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def agent_config(gateway: Gateway | str, hub: ProvisionedHub, state_dir: Path,
                 printers: list[tuple[str, str]], *, fmt: str = "msgpack", **overrides: Any) -> AgentConfig:
    server = gateway.ws if isinstance(gateway, Gateway) else gateway
    values: dict[str, Any] = dict(
        hub_id=hub.hub_id,
        secret=hub.secret,
        server=server,
        state_dir=state_dir,
        format=fmt,
        backoff_initial_s=0.1,
        backoff_max_s=0.5,
        connect_timeout_s=2.0,
        status_interval_s=0.25,
        status_keepalive_s=5.0,
        printers=tuple(PrinterConfig(printer_id=pid, connector="opcua", endpoint=ep) for pid, ep in printers),
    )
    values.update(overrides)
    return AgentConfig(**values)


@asynccontextmanager
async def running_agent(config: AgentConfig) -> AsyncIterator[HubAgent]:
    agent = HubAgent(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        try:
            yield agent
        finally:
            nursery.cancel_scope.cancel()


class Dashboard:
    """A dashboard client: collects every frame, keeps the latest state per printer/job/hub."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.printers: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.job_history: dict[str, list[str]] = {}
        self.hubs: dict[str, dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.closed: trio_websocket.ConnectionClosed | None = None
        self._changed = trio.Event()

    def _absorb(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "snapshot":
            self.printers = {p["printer_id"]: p for p in frame["printers"]}
            self.hubs = {h["hub_id"]: h for h in frame["hubs"]}
            self.jobs = {j["job_id"]: j for j in frame["jobs"]}
        elif kind == "printer_status":
            self.printers[frame["printer_id"]] = frame
        elif kind == "job_update":
            self.jobs[frame["job_id"]] = frame
            history = self.job_history.setdefault(frame["job_id"], [])
            if not history or history[-1] != frame["status"]:
                history.append(frame["status"])
        elif kind == "hub_status":
            self.hubs[frame["hub_id"]] = frame
        elif kind == "alert":
            self.alerts.append(frame)
        self._changed.set()
        self._changed = trio.Event()

    async def pump(self) -> None:
        try:
            while True:
                raw = await self.ws.get_message()
                self._absorb(json.loads(raw))
        except trio_websocket.ConnectionClosed as exc:
            self.closed = exc
            self._changed.set()

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while not predicate(self):
                await self._changed.wait()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))


@asynccontextmanager
async def open_ws(url: str, **kwargs: Any) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """``open_websocket_url`` that also closes the TCP stream: trio-websocket 0.12 leaves it
    open when the server closes first (pytest then reports an unraisable ResourceWarning)."""
    connection: trio_websocket.WebSocketConnection | None = None
    try:
        async with trio_websocket.open_websocket_url(url, **kwargs) as ws:
            connection = ws
            yield ws
    finally:
        if connection is not None:
            await connection._stream.aclose()


@asynccontextmanager
async def open_dashboard(gateway: Gateway, token: str, *, since: int | None = None) -> AsyncIterator[Dashboard]:
    url = f"{gateway.ws}/api/v1/dashboard/ws" + (f"?since={since}" if since is not None else "")
    async with open_ws(url, subprotocols=["ensemble.json"]) as ws:
        await ws.send_message(json.dumps({"type": "auth", "token": token}))
        reply = json.loads(await ws.get_message())
        assert reply["type"] == "auth_success", reply
        board = Dashboard(ws)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(board.pump)
            try:
                yield board
            finally:
                nursery.cancel_scope.cancel()


class Proxy:
    """A TCP forwarder between the agent and the gateway that the test can cut.

    ``cut()`` drops every connection and stops listening (new connections are
    refused, as by a stopped server); ``restore()`` listens again on the same
    port, optionally towards a new target (a restarted gateway).
    ``hold_upstream`` stops forwarding agent -> gateway bytes (lost when cut),
    to lose an ack on purpose.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.hold_upstream = False
        self.open = True
        self.connections = 0
        self._scopes: set[trio.CancelScope] = set()
        self._listening: trio.CancelScope | None = None
        self._wanted = trio.Event()
        self._nursery: trio.Nursery | None = None

    async def serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()
            while True:
                with trio.CancelScope() as scope:
                    self._listening = scope
                    await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)
                for listener in listeners:
                    await listener.aclose()
                while not self.open:
                    self._wanted = trio.Event()
                    await self._wanted.wait()
                listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, upstream: bool) -> None:
        while True:
            data = await source.receive_some(65536)
            if not data:
                return
            while upstream and self.hold_upstream:  # read but held: lost if the link is cut now
                await trio.sleep(0.01)
            await sink.send_all(data)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                return
            self.connections += 1
            async with upstream:
                with trio.CancelScope() as scope:
                    self._scopes.add(scope)
                    try:
                        async with trio.open_nursery() as nursery:
                            async def one_way(a: trio.SocketStream, b: trio.SocketStream, up: bool) -> None:
                                try:
                                    await self._pump(a, b, up)
                                except (trio.BrokenResourceError, trio.ClosedResourceError):
                                    pass
                                nursery.cancel_scope.cancel()

                            nursery.start_soon(one_way, client, upstream, True)
                            nursery.start_soon(one_way, upstream, client, False)
                    finally:
                        self._scopes.discard(scope)

    def cut(self) -> None:
        self.open = False
        if self._listening is not None:
            self._listening.cancel()
        for scope in list(self._scopes):
            scope.cancel()

    def restore(self, target_port: int | None = None) -> None:
        if target_port is not None:
            self.target_port = target_port
        self.hold_upstream = False
        self.open = True
        self._wanted.set()


async def eventually(predicate: Any, timeout: float = 20.0, step: float = 0.05) -> None:
    """Poll an async or sync predicate until it is true."""
    with trio.fail_after(timeout):
        while True:
            value = predicate()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return
            await trio.sleep(step)


def now_s() -> int:
    return int(time.time())
