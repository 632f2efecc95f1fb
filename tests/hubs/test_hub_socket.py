"""The hub socket: who may connect, and what an unclaimed or released hub may do.

Each refusal is checked for its exact error and close code, and for leaving
nothing behind (no actor event, the hub not marked online).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio_websocket

from ensemble.hubs.protocol import new_nonce, sign_hello
from ensemble.gateway.sockets import hubs as hub_socket_module
from tests.hubs._helpers import (
    Gateway,
    ProvisionedHub,
    add_printer,
    claim,
    open_dashboard,
    open_ws,
    provision_hub,
    running_gateway,
    signup,
    upload_print_file,
)


def hello(hub: ProvisionedHub, *, secret: str | None = None, timestamp: int | None = None,
          nonce: str | None = None, stream: str = "stream-1") -> dict[str, Any]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or new_nonce()
    return {
        "type": "hub_hello", "hub_id": hub.hub_id, "firmware": "test/1", "timestamp": timestamp, "nonce": nonce,
        "signature": sign_hello(hub.hub_id, secret or hub.secret, timestamp, nonce), "stream_id": stream,
    }


class FakeHub:
    """A hand-driven hub: sends exactly what the test says."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.seq = -1

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())  # type: ignore[no-any-return]

    async def receive_type(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                frame = await self.receive()
                if frame["type"] == kind:
                    return frame

    async def event(self, message: dict[str, Any]) -> int:
        self.seq += 1
        await self.send({**message, "seq": self.seq})
        return self.seq

    async def status(self, printer_id: str, status: str = "idle", **fields: Any) -> int:
        return await self.event({"type": "printer_status", "printer_id": printer_id, "status": status,
                                 "ts": int(time.time() * 1000), **fields})


async def exchange(gateway: Gateway, first: Any) -> tuple[dict[str, Any] | None, int | None]:
    """Send one first frame; return (the reply, the close code)."""
    async with open_ws(f"{gateway.ws}/api/v1/hubs/connect", subprotocols=["ensemble.json"]) as ws:
        await ws.send_message(first if isinstance(first, str) else json.dumps(first))
        reply = None
        try:
            with trio.fail_after(10):
                reply = json.loads(await ws.get_message())
                await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            return reply, exc.reason.code
    return reply, None


async def nothing_stored(gateway: Gateway, hub_id: str) -> None:
    events = await gateway.services.db.run(
        lambda conn: conn.fetchval("SELECT count(*) FROM actor_events WHERE kind = 'hub' AND key = $1", hub_id))
    online = await gateway.services.db.run(
        lambda conn: conn.fetchval("SELECT is_online FROM hubs WHERE id = $1", uuid.UUID(hub_id)))
    assert events == 0 and online is False


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad_hmac", "hub hello: bad signature"),
        ("stale_timestamp", "off the server clock"),
        ("future_timestamp", "off the server clock"),
        ("unknown_hub", "hub hello: unknown hub"),
        ("not_a_hello", "the first message must be hub_hello"),
        ("malformed_hello", "hub_hello.signature"),
        ("not_json", "hub hello:"),
    ],
)
async def test_refused_handshakes(gateway: Gateway, case: str, message: str) -> None:
    hub = await provision_hub(gateway.services)
    first: Any
    if case == "bad_hmac":
        first = hello(hub, secret="not-the-secret")
    elif case == "stale_timestamp":
        first = hello(hub, timestamp=int(time.time()) - 3600)
    elif case == "future_timestamp":
        first = hello(hub, timestamp=int(time.time()) + 3600)
    elif case == "unknown_hub":
        first = hello(ProvisionedHub(str(uuid.uuid4()), hub.secret, ""))
    elif case == "not_a_hello":
        first = {"type": "heartbeat", "ts": 1, "uptime_s": 1}
    elif case == "malformed_hello":
        first = {**hello(hub), "signature": "zz"}
    else:
        first = "{not json"
    reply, code = await exchange(gateway, first)
    assert reply is not None and reply["type"] == "auth_error", reply
    assert message in reply["message"]
    assert code == 4401
    await nothing_stored(gateway, hub.hub_id)


async def test_a_replayed_hello_is_refused(gateway: Gateway) -> None:
    hub = await provision_hub(gateway.services)
    captured = hello(hub)
    async with open_ws(f"{gateway.ws}/api/v1/hubs/connect", subprotocols=["ensemble.json"]) as ws:
        await ws.send_message(json.dumps(captured))
        assert json.loads(await ws.get_message())["type"] == "hub_welcome"
        # Someone who recorded the hello plays it again, while or after the hub is connected.
        reply, code = await exchange(gateway, captured)
        assert reply == {"type": "auth_error", "message": "hub hello: nonce already used"} and code == 4401


async def test_no_hello_in_time(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_socket_module, "HELLO_TIMEOUT_S", 0.3)
    async with open_ws(f"{gateway.ws}/api/v1/hubs/connect", subprotocols=["ensemble.json"]) as ws:
        with trio.fail_after(5):
            reply = json.loads(await ws.get_message())
        assert reply["type"] == "auth_error" and "none received within 0.3 s" in reply["message"]


@asynccontextmanager
async def connect(gateway: Gateway, hub: ProvisionedHub) -> AsyncIterator[tuple[FakeHub, dict[str, Any]]]:
    async with open_ws(f"{gateway.ws}/api/v1/hubs/connect", subprotocols=["ensemble.json"]) as ws:
        fake = FakeHub(ws)
        await fake.send(hello(hub))
        yield fake, await fake.receive()


async def test_unclaimed_hub_reports_to_nobody_then_claim_then_release_cuts_it_off(gateway: Gateway) -> None:
    async with gateway.client() as http:
        owner = await signup(http)
        hub = await provision_hub(gateway.services)
        async with connect(gateway, hub) as (fake, welcome), open_dashboard(gateway, owner.access_token) as board:
            assert welcome["type"] == "hub_welcome" and welcome["claimed"] is False
            assert welcome["claim_code"] and welcome["claim_code_expires_at"] > time.time() * 1000
            # An unclaimed hub's reports are taken (and acknowledged) but reach no tenant.
            seq = await fake.status(str(uuid.uuid4()), "printing")
            assert (await fake.receive_type("seq_ack"))["seq"] == seq
            assert board.hubs == {} and board.printers == {}
            # The tenant admin claims it with the code the hub shows.
            r = await owner.post("/api/v1/hubs/claim", json={"claim_code": welcome["claim_code"], "name": "Shelf"})
            assert r.status_code == 201, r.text
            await board.wait_for(lambda b: hub.hub_id in b.hubs)
            assert board.hubs[hub.hub_id]["is_online"] is True
            printer = await add_printer(owner, hub.hub_id)
            await fake.status(printer["id"], "idle")  # unknown to the actor yet: it reloads its facts
            await trio.sleep(0.3)
            await fake.status(printer["id"], "idle", nozzle_temp=25.5)
            await board.wait_for(lambda b: b.printers.get(printer["id"], {}).get("nozzle_temp") == 25.5)
            file = await upload_print_file(owner)
            r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
            assert r.status_code == 201, r.text
            job = r.json()["data"]
            command = await fake.receive_type("print_command")
            assert command["job_id"] == job["id"]
            # Release: the socket is closed at once, the job fails, the dashboard is told.
            r = await owner.post(f"/api/v1/hubs/{hub.hub_id}/release", json={})
            assert r.status_code == 204, r.text
            with trio.fail_after(5):
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    while True:
                        await fake.ws.get_message()
            assert closed.value.reason.code == 4403
            await board.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["failed"])
            await board.wait_for(lambda b: b.hubs.get(hub.hub_id, {}).get("is_online") is False)
            r = await owner.get(f"/api/v1/print-jobs/{job['id']}")
            assert r.json()["data"]["status"] == "failed"
            assert r.json()["data"]["failure_reason"] == "hub released by the tenant"
        # It may reconnect, unclaimed again: no commands, nothing for the old tenant.
        async with connect(gateway, hub) as (again, welcome):
            assert welcome["claimed"] is False and welcome["claim_code"]
            r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
            assert r.status_code == 409  # the printer was detached from the released hub


async def test_silence_and_command_expiry_through_the_runtime(database_url: str, tmp_path) -> None:
    """The durable alarm: a silent hub is closed and its tenant alerted; an unacknowledged print fails."""
    async with running_gateway(database_url, tmp_path / "data", hub_offline_after_s=1.0,
                               hub_command_ttl_s=1.5) as gw, gw.client() as http:
        owner = await signup(http)
        hub = await provision_hub(gw.services)
        await claim(owner, hub)
        printer = await add_printer(owner, hub.hub_id)
        file = await upload_print_file(owner)
        async with open_dashboard(gw, owner.access_token) as board:
            async with connect(gw, hub) as (fake, welcome):
                assert welcome["claimed"] is True
                await fake.status(printer["id"], "idle")
                r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
                job = r.json()["data"]
                await fake.receive_type("print_command")  # received, never acknowledged; then silence
                with trio.fail_after(10):
                    with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                        while True:
                            await fake.ws.get_message()
                assert closed.value.reason.code == 4408
            await board.wait_for(lambda b: any(a["kind"] == "hub_offline" for a in b.alerts), timeout=10)
            assert board.hubs[hub.hub_id]["is_online"] is False
            assert board.printers[printer["id"]]["status"] == "offline"
            await board.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["failed"], timeout=10)
            failed = (await owner.get(f"/api/v1/print-jobs/{job['id']}")).json()["data"]
            assert failed["failure_reason"] == "the hub did not acknowledge the print command within 1 s"
            assert any(a["kind"] == "job_failed" and a["job_id"] == job["id"] for a in board.alerts)
            assert sum(a["kind"] == "hub_offline" for a in board.alerts) == 1
