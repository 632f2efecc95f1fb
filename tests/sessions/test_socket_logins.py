"""Open sockets follow their login: removal, logout and a lost role end them (LoginWatch)."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio_websocket

from ensemble.gateway._logins import login_watch
from tests.gateway.conftest import Harness
from tests.sessions.conftest import connect, field_team, start_session


async def _sweep(h: Harness) -> int:
    # The gateway sweeps every 30 s; a test runs the same sweep at once.
    return await login_watch(h.srv.services).sweep(h.srv.services.db)


async def _watched(h: Harness, n: int) -> None:
    with trio.fail_after(10):
        while len(login_watch(h.srv.services)) != n:
            await trio.sleep(0.01)


async def test_a_removed_member_is_disconnected_and_the_others_stay(h: Harness) -> None:
    team = await field_team(h, technicians=2)
    alice, bob = team.techs
    sid = await start_session(team, alice, invite=[bob])
    async with connect(h.srv.url, sid, alice.access_token) as a, connect(h.srv.url, sid, bob.access_token) as b:
        await a.until(lambda f: f["type"] == "session_state")
        await b.until(lambda f: f["type"] == "session_state")
        await _watched(h, 2)
        assert await _sweep(h) == 0  # both still allowed: nothing closes

        r = await team.owner.delete(f"/api/v1/users/{bob.user_id}")
        assert r.status_code == 204
        assert await _sweep(h) == 1
        frames = await b.until(lambda f: f["type"] == "error")
        assert frames[-1]["error"] == "unauthenticated"
        assert await b.closed() == 4401
        # Alice's socket is untouched and still works.
        await a.send({"type": "message", "text": "still here", "client_id": "m-1"})
        await a.until(lambda f: f["type"] == "ack" and f["client_id"] == "m-1")
    assert len(login_watch(h.srv.services)) == 0  # closed sockets leave the watch


async def test_a_technician_demoted_to_viewer_loses_the_session_socket_only(h: Harness) -> None:
    team = await field_team(h, technicians=1)
    (tech,) = team.techs
    sid = await start_session(team, tech)
    async with connect(h.srv.url, sid, tech.access_token) as session_ws:
        await session_ws.until(lambda f: f["type"] == "session_state")
        url = h.srv.url.replace("http://", "ws://") + "/api/v1/dashboard/ws"
        async with trio_websocket.open_websocket_url(url, subprotocols=["ensemble.json"]) as dash:
            await dash.send_message(json.dumps({"type": "auth", "token": tech.access_token}))
            assert json.loads(await dash.get_message())["type"] == "auth_success"
            await _watched(h, 2)

            r = await team.owner.patch(f"/api/v1/users/{tech.user_id}", json={"role": "viewer"})
            assert r.status_code == 200, r.text
            assert await _sweep(h) == 1
            frames = await session_ws.until(lambda f: f["type"] == "error")
            assert frames[-1]["error"] == "forbidden"
            assert await session_ws.closed() == 4403
            # A viewer may still watch the dashboard: that socket stays open.
            await dash.send_message(json.dumps({"type": "ping"}))
            with trio.fail_after(10):
                while True:
                    frame: dict[str, Any] = json.loads(await dash.get_message())
                    if frame["type"] == "pong":
                        break
            assert dash.closed is None


async def test_logout_ends_the_dashboard_socket_of_that_login(h: Harness) -> None:
    owner = await h.signup()
    url = h.srv.url.replace("http://", "ws://") + "/api/v1/dashboard/ws"
    async with trio_websocket.open_websocket_url(url, subprotocols=["ensemble.json"]) as dash:
        await dash.send_message(json.dumps({"type": "auth", "token": owner.access_token}))
        assert json.loads(await dash.get_message())["type"] == "auth_success"
        await _watched(h, 1)
        r = await owner.post("/api/v1/auth/logout", json={})
        assert r.status_code == 204
        assert await _sweep(h) == 1
        with trio.fail_after(10):
            while True:
                try:
                    await dash.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    assert exc.reason.code == 4401
                    break
        await dash._stream.aclose()  # trio-websocket leaves the TCP stream of a server close open
