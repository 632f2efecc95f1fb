"""Another tenant's admin or dashboard cannot touch this tenant's hub, printers or jobs."""

from __future__ import annotations

import json

import trio
import trio_websocket

from ensemble.gateway.sockets import dashboards as dashboard_module
from tests.hubs._helpers import (
    Gateway,
    add_printer,
    claim,
    member,
    open_dashboard,
    open_ws,
    provision_hub,
    signup,
    upload_print_file,
)
from tests.hubs.test_hub_socket import connect


async def test_another_tenant_admin_gets_404_everywhere(gateway: Gateway) -> None:
    async with gateway.client() as http:
        alice = await signup(http, "Alice Prints")
        bob = await signup(http, "Bob Prints")
        hub = await provision_hub(gateway.services)
        await claim(alice, hub)
        printer = await add_printer(alice, hub.hub_id)
        file = await upload_print_file(alice)
        r = await alice.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
        assert r.status_code == 201, r.text
        job = r.json()["data"]
        assert job["status"] == "queued"  # the hub is offline: the command waits

        bob_hub = await provision_hub(gateway.services)
        await claim(bob, bob_hub)
        bob_printer = await add_printer(bob, bob_hub.hub_id)
        bob_file = await upload_print_file(bob)
        checks = [
            ("GET", f"/api/v1/print-jobs/{job['id']}", None),
            ("POST", f"/api/v1/print-jobs/{job['id']}/cancel", {}),
            ("POST", f"/api/v1/print-jobs/{job['id']}/pause", {}),
            ("POST", "/api/v1/print-jobs", {"printer_id": printer["id"], "file_id": bob_file["id"]}),
            ("POST", "/api/v1/print-jobs", {"printer_id": bob_printer["id"], "file_id": file["id"]}),
            ("GET", f"/api/v1/hubs/{hub.hub_id}", None),
            ("POST", f"/api/v1/hubs/{hub.hub_id}/release", {}),
            ("GET", f"/api/v1/printers/{printer['id']}", None),
            ("GET", f"/api/v1/printers/{printer['id']}/telemetry",
             {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}),
        ]
        for method, url, body in checks:
            if method == "GET":
                r = await bob.get(url, params=body or {})
            else:
                r = await bob.post(url, json=body)
            assert r.status_code == 404, (method, url, r.status_code, r.text)
            assert r.json()["error"] == "not_found"
        r = await bob.get("/api/v1/print-jobs")
        assert r.status_code == 200 and all(j["id"] != job["id"] for j in r.json()["data"])
        # Nothing changed for Alice.
        r = await alice.get(f"/api/v1/print-jobs/{job['id']}")
        assert r.json()["data"]["status"] == "queued"
        assert [t["status"] for t in r.json()["data"]["transitions"]] == ["queued"]


async def test_roles(gateway: Gateway) -> None:
    async with gateway.client() as http:
        owner = await signup(http)
        viewer = await member(owner, "viewer")
        hub = await provision_hub(gateway.services)
        await claim(owner, hub)
        printer = await add_printer(owner, hub.hub_id)
        file = await upload_print_file(owner)
        r = await viewer.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert await owner.get("/api/v1/print-jobs") and (await viewer.get("/api/v1/print-jobs")).status_code == 200
        async with open_dashboard(gateway, viewer.access_token) as board:  # viewers may watch
            await board.wait_for(lambda b: printer["id"] in b.printers)


async def test_illegal_transitions_are_409(gateway: Gateway) -> None:
    async with gateway.client() as http:
        owner = await signup(http)
        hub = await provision_hub(gateway.services)
        await claim(owner, hub)
        printer = await add_printer(owner, hub.hub_id)
        file = await upload_print_file(owner)
        job = (await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]}))
        job_id = job.json()["data"]["id"]
        for action in ("pause", "resume"):
            r = await owner.post(f"/api/v1/print-jobs/{job_id}/{action}", json={})
            assert r.status_code == 409, r.text
            assert r.json()["details"]["status"] == "queued"
        r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
        assert r.status_code == 409 and "active job" in r.json()["message"]
        r = await owner.post(f"/api/v1/print-jobs/{job_id}/cancel", json={"reason": "wrong file"})
        assert r.status_code == 200 and r.json()["data"]["status"] == "cancelled"
        assert r.json()["data"]["failure_reason"] == "wrong file"
        r = await owner.post(f"/api/v1/print-jobs/{job_id}/cancel", json={})
        assert r.status_code == 409 and r.json()["details"]["status"] == "cancelled"
        loose = await add_printer(owner, None)
        r = await owner.post("/api/v1/print-jobs", json={"printer_id": loose["id"], "file_id": file["id"]})
        assert r.status_code == 409 and "not connected through a hub" in r.json()["message"]
        r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"]})
        assert r.status_code == 422


async def test_dashboards_see_only_their_tenant_and_their_subscriptions(gateway: Gateway) -> None:
    async with gateway.client() as http:
        alice = await signup(http, "Alice Prints")
        bob = await signup(http, "Bob Prints")
        hub = await provision_hub(gateway.services)
        await claim(alice, hub)
        p1 = await add_printer(alice, hub.hub_id, "One")
        p2 = await add_printer(alice, hub.hub_id, "Two")
        async with connect(gateway, hub) as (fake, welcome), open_dashboard(gateway, alice.access_token) as board, \
                open_dashboard(gateway, bob.access_token) as spy:
            assert welcome["claimed"] is True
            await board.wait_for(lambda b: {p1["id"], p2["id"]} <= set(b.printers) and hub.hub_id in b.hubs)
            assert spy.printers == {} and spy.hubs == {}
            # Bob's dashboard asks for Alice's printer: refused, and it changes nothing.
            await spy.send({"type": "subscribe", "printers": [p1["id"]]})
            await spy.wait_for(lambda b: any(f["type"] == "error" for f in b.frames))
            error = next(f for f in spy.frames if f["type"] == "error")
            assert error["code"] == "not_found" and p1["id"] in error["message"]
            # Alice follows only p1.
            await board.send({"type": "subscribe", "printers": [p1["id"]]})
            await board.send({"type": "ping", "ts": 7})
            await board.wait_for(lambda b: any(f["type"] == "pong" for f in b.frames))
            mark = len(board.frames)
            await fake.status(p2["id"], "printing", progress=5)
            await fake.status(p1["id"], "printing", progress=6)
            await board.wait_for(lambda b: b.printers[p1["id"]].get("progress") == 6)
            later = board.frames[mark:]
            assert all(f.get("printer_id") != p2["id"] for f in later)
            await board.send({"type": "unsubscribe"})
            await board.send({"type": "subscribe"})
            await fake.status(p2["id"], "printing", progress=8)
            await board.wait_for(lambda b: b.printers[p2["id"]].get("progress") == 8)
            await trio.sleep(0.2)
            assert not any(f.get("printer_id") in (p1["id"], p2["id"]) for f in spy.frames)


async def test_dashboard_authentication(gateway: Gateway, monkeypatch) -> None:
    url = f"{gateway.ws}/api/v1/dashboard/ws"

    async def first_frame(frame: str) -> tuple[dict, int | None]:
        async with open_ws(url, subprotocols=["ensemble.json"]) as ws:
            await ws.send_message(frame)
            reply = json.loads(await ws.get_message())
            try:
                with trio.fail_after(5):
                    await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                return reply, exc.reason.code
            return reply, None

    reply, code = await first_frame(json.dumps({"type": "auth", "token": "not-a-jwt"}))
    assert reply == {"type": "auth_error", "message": "invalid access token"} and code == 4401
    reply, code = await first_frame(json.dumps({"type": "subscribe"}))
    assert reply["type"] == "auth_error" and "first message must be auth" in reply["message"] and code == 4401
    reply, code = await first_frame("{nope")
    assert reply["type"] == "auth_error" and code == 4401
    async with gateway.client() as http:
        owner = await signup(http)
        r = await owner.post("/api/v1/auth/logout", json={})
        assert r.status_code in (200, 204), r.text
        reply, code = await first_frame(json.dumps({"type": "auth", "token": owner.access_token}))
        assert reply["type"] == "auth_error" and "session ended" in reply["message"] and code == 4401
    monkeypatch.setattr(dashboard_module, "AUTH_TIMEOUT_S", 0.3)
    async with open_ws(url, subprotocols=["ensemble.json"]) as ws:
        reply = json.loads(await ws.get_message())
        assert reply["type"] == "auth_error" and "send auth first" in reply["message"]
