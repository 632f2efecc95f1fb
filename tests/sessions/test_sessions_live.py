"""End to end over the real server: technicians, presence, readings, recovery, AI, completion."""

from __future__ import annotations

import uuid
from typing import Any

import trio

from tests.gateway.conftest import Harness
from tests.server import RunningServer
from tests.sessions.conftest import DURABLE, connect, count_rows, field_team, refused, sent, start_session


def _messages(frames: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [
        (f["offset"], f["message"]["sender_name"], f["message"]["text"])
        for f in frames if f.get("type") in ("new_message", "reading")
    ]


async def test_three_technicians_share_one_ordered_session_and_an_outsider_is_refused(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=4)
    t1, t2, t3, bystander = team.techs
    sid = await start_session(team, t1, invite=[t2, t3])
    other = await field_team(h, technicians=1, tenant_name="Rival HVAC")
    outsider = other.techs[0]

    # The outsider: not on REST, not over the socket (token in the URL or in the first frame).
    for method, url, body in (
        ("GET", f"/api/v1/diagnostic/sessions/{sid}", None),
        ("GET", f"/api/v1/diagnostic/sessions/{sid}/messages", None),
        ("POST", f"/api/v1/diagnostic/sessions/{sid}/messages", {"text": "hello?"}),
        ("POST", f"/api/v1/diagnostic/sessions/{sid}/invite", {"technician_id": outsider.user_id}),
    ):
        r = await outsider.request(method, url, json=body)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (url, r.text)
    status, body = await refused(srv.url, sid, outsider.access_token)
    assert (status, body["error"]) == (404, "not_found")
    async with connect(srv.url, sid, outsider.access_token, first_frame_auth=True) as ws:
        error = await ws.recv()
        assert error["type"] == "error" and error["error"] == "not_found"
        assert await ws.closed() == 4404
    # Same tenant but not a participant: 403.  A bad token: 401.  A session that is nobody's: 404.
    assert (await refused(srv.url, sid, bystander.access_token))[0] == 403
    assert (await refused(srv.url, sid, "not-a-token"))[0] == 401
    assert (await refused(srv.url, str(uuid.uuid4()), t1.access_token))[0] == 404
    assert (await refused(srv.url, "not-a-uuid", t1.access_token))[0] == 404
    assert (await refused(srv.url, sid, t1.access_token, since="-3"))[0] == 400

    async with (
        connect(srv.url, sid, t1.access_token) as a,
        connect(srv.url, sid, t2.access_token) as b,
        connect(srv.url, sid, t3.access_token, fmt="msgpack") as c,
    ):
        clients = [a, b, c]
        for ws in clients:
            state = await ws.recv()
            assert state["type"] == "session_state", state
            assert {p["name"] for p in state["participants"]} == {"Tech 1", "Tech 2", "Tech 3", "AI Assistant"}
        # Everyone sees everyone come online (the last one to connect, in its state).
        for ws in (a, b):
            await ws.until(lambda f: f["type"] == "presence" and f["participant_id"] == t3.user_id and f["online"])
        online = {p["id"] for p in c.frames[0]["participants"] if p["online"]}
        assert online == {t1.user_id, t2.user_id, t3.user_id}

        await a.send({"type": "message", "client_id": "a1", "text": "Compressor hums but does not start."})
        await b.send({"type": "reading", "client_id": "b1", "kind": "suction_pressure", "value": 52, "unit": "psi",
                      "equipment_id": team.equipment_id})
        await c.send({"type": "message", "client_id": "c1", "text": "Checking the capacitor."})
        await b.send({"type": "typing", "active": True})
        await a.send({"type": "reading", "client_id": "a2", "kind": "capacitor", "value": 31.5, "unit": "uF"})

        for ws in clients:
            await ws.until(lambda f: f["type"] == "reading" and f["message"]["client_id"] == "a2")
        await a.until(lambda f: f["type"] == "ack" and f["client_id"] == "a2")
        # Same events, same order, same offsets for all three (whatever each one's own acks).
        expected = _messages(a.frames)
        assert len(expected) == 4
        assert _messages(b.frames) == expected and _messages(c.frames) == expected
        tail = [sent([f for f in ws.frames if f.get("type") in DURABLE and f["offset"] >= expected[0][0]]) for ws in clients]
        assert tail[0] == tail[1] == tail[2]
        reading = next(f for f in c.frames if f["type"] == "reading" and f["message"]["client_id"] == "b1")["message"]
        assert reading["reading"] == {"kind": "suction_pressure", "value": 52, "unit": "psi",
                                      "equipment_id": team.equipment_id, "note": None}
        # Acks reach only the sender, after the event frame.
        acks = [f for f in a.frames if f["type"] == "ack"]
        assert [x["client_id"] for x in acks] == ["a1", "a2"] and not any(f["type"] == "ack" and f["client_id"] == "a1" for f in b.frames)
        a1 = next(f for f in a.frames if f["type"] == "new_message" and f["message"]["client_id"] == "a1")
        assert a.frames.index(a1) < a.frames.index(acks[0]) and acks[0]["message_offset"] == a1["offset"]
        if not any(f["type"] == "typing" for f in c.frames):
            await c.until(lambda f: f["type"] == "typing")
        typing = next(f for f in c.frames if f["type"] == "typing")
        assert typing["participant_id"] == t2.user_id and typing["name"] == "Tech 2" and typing["active"] is True

        # One technician on two devices is one participant, online while either is.
        async with connect(srv.url, sid, t2.access_token) as b2:
            await b2.recv()
            two = await a.until(lambda f: f["type"] == "presence" and f["participant_id"] == t2.user_id)
            assert two[-1]["online"] and two[-1]["devices"] == 2
        one = await a.until(lambda f: f["type"] == "presence" and f["participant_id"] == t2.user_id)
        assert one[-1]["online"] and one[-1]["devices"] == 1

    r = await t3.get(f"/api/v1/diagnostic/sessions/{sid}/messages")
    history = r.json()["data"]
    assert [(m["offset"], m["sender_name"], m["text"]) for m in history] == expected
    r = await t1.get(f"/api/v1/diagnostic/sessions/{sid}")
    session = r.json()["data"]
    assert session["message_count"] == 4 and session["is_collaborative"] is True
    assert {p["id"] for p in session["participants"]} == {t1.user_id, t2.user_id, t3.user_id, "ai"}
    assert session["equipment"]["model"] == "24ACC6"


async def test_reconnect_with_since_retries_and_offline_queue(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=2)
    t1, t2 = team.techs
    sid = await start_session(team, t1, invite=[t2])
    async with connect(srv.url, sid, t1.access_token) as a:
        await a.recv()
        async with connect(srv.url, sid, t2.access_token) as b:
            await b.recv()
            await b.send({"type": "message", "client_id": "b-1", "text": "first"})
            ack = (await b.until(lambda f: f["type"] == "ack"))[-1]
            seen = b.last_offset
            original = ack["message_offset"]
        # b is gone; a keeps talking.
        for n in range(3):
            await a.send({"type": "message", "client_id": f"a-{n}", "text": f"while you were away {n}"})
        await a.until(lambda f: f["type"] == "ack" and f["client_id"] == "a-2")
        current = a.last_offset
        assert seen is not None and current is not None

        async with connect(srv.url, sid, t2.access_token, since=seen) as b:
            # Exactly the missed events, in order: b's own disconnect, a's three messages, b's reconnect.
            got = await b.until(lambda f: f["type"] == "presence" and f["participant_id"] == t2.user_id and f["online"])
            assert [f["offset"] for f in got] == list(range(seen + 1, got[-1]["offset"] + 1))
            assert [f["message"]["text"] for f in got if f["type"] == "new_message"] == [
                f"while you were away {n}" for n in range(3)
            ]
            assert got[-1]["offset"] > current
            # The retry of "first" (its ack was lost, say) stores nothing new.
            before = await count_rows(h, sid)
            await b.send({"type": "message", "client_id": "b-1", "text": "first"})
            retry = (await b.until(lambda f: f["type"] == "ack"))[-1]
            assert retry["duplicate"] is True and retry["message_offset"] == original
            assert await count_rows(h, sid) == before
            # REST retries behave the same (200, original offset).
            r = await t2.post(f"/api/v1/diagnostic/sessions/{sid}/messages", json={"client_id": "b-1", "text": "first"})
            assert r.status_code == 200 and r.json()["data"] == {**r.json()["data"], "offset": original, "duplicate": True}
            assert r.json()["data"]["message"]["text"] == "first"

            # An offline queue flushed at once: stored in send order, original times kept.
            queued = [(f"q-{n}", f"2024-06-01T08:0{n}:00Z") for n in range(5)]
            for client_id, written in queued:
                await b.send({"type": "message", "client_id": client_id, "text": f"offline {client_id}", "sent_at": written})
            await b.until(lambda f: f["type"] == "ack" and f["client_id"] == "q-4")
            # ...and flushed again after a flaky reconnect: nothing doubles.
            for client_id, written in queued:
                await b.send({"type": "message", "client_id": client_id, "text": f"offline {client_id}", "sent_at": written})
            dup_acks = await b.until(lambda f: f["type"] == "ack" and f["client_id"] == "q-4" and f["duplicate"])
            assert sum(1 for f in dup_acks if f["type"] == "ack" and f["duplicate"]) == 5
        await a.until(lambda f: f["type"] == "new_message" and f["message"]["client_id"] == "q-4")
        landed = [f["message"] for f in a.frames if f["type"] == "new_message" and f["message"]["client_id"].startswith("q-")]
        assert [m["client_id"] for m in landed] == [c for c, _ in queued]
        assert [m["client_sent_at"] for m in landed] == [w.replace("Z", "+00:00") for _, w in queued]
        assert [m["offset"] for m in landed] == sorted(m["offset"] for m in landed)
    rows = await h.db.fetch(
        "SELECT client_id, count(*) AS n FROM diagnostic_messages WHERE session_id = $1::uuid GROUP BY client_id", sid
    )
    assert all(r["n"] == 1 for r in rows) and len(rows) == 1 + 3 + 5


async def test_completing_closes_sockets_and_makes_the_session_read_only(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=2)
    t1, t2 = team.techs
    sid = await start_session(team, t1, invite=[t2])
    async with connect(srv.url, sid, t1.access_token) as a, connect(srv.url, sid, t2.access_token, fmt="msgpack") as b:
        await a.recv()
        await b.recv()
        await a.send({"type": "message", "client_id": "m", "text": "Replaced the run capacitor."})
        await b.until(lambda f: f["type"] == "new_message")
        r = await t2.request("PUT", f"/api/v1/diagnostic/sessions/{sid}/complete", json={"summary": "Failed capacitor replaced."})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["status"] == "completed"
        for ws in (a, b):
            done = await ws.until(lambda f: f["type"] == "session_completed")
            assert done[-1]["summary"] == "Failed capacitor replaced." and done[-1]["completed_by"] == t2.user_id
            assert await ws.closed() == 4410
    r = await t1.post(f"/api/v1/diagnostic/sessions/{sid}/messages", json={"text": "one more thing"})
    assert r.status_code == 409 and r.json()["error"] == "session_completed"
    r = await t1.request("PUT", f"/api/v1/diagnostic/sessions/{sid}/complete", json={"summary": "again"})
    assert r.status_code == 409
    # A late socket gets the final state (or what it missed), then the same close.
    async with connect(srv.url, sid, t1.access_token) as late:
        state = await late.recv()
        assert state["type"] == "session_state" and state["session"]["status"] == "completed"
        assert await late.closed() == 4410
    # History stays readable.
    r = await t1.get(f"/api/v1/diagnostic/sessions/{sid}/messages")
    assert [m["text"] for m in r.json()["data"]] == ["Replaced the run capacitor."]
    r = await t1.get("/api/v1/diagnostic/sessions", params={"status": "completed", "client_id": team.client_id})
    assert [s["id"] for s in r.json()["data"]] == [sid]


async def test_the_ai_answer_streams_into_the_session(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=2)
    t1, t2 = team.techs
    sid = await start_session(team, t1, invite=[t2])
    async with connect(srv.url, sid, t1.access_token) as a, connect(srv.url, sid, t2.access_token) as b:
        await a.recv()
        await b.recv()
        await a.send({"type": "reading", "kind": "suction_pressure", "value": 52, "unit": "psi"})
        await a.send({"type": "message", "client_id": "q", "text": "Why is suction pressure low?", "ask_ai": True})
        await a.send({"type": "message", "client_id": "q2", "text": "And superheat?", "ask_ai": True})
        busy = await a.until(lambda f: f["type"] == "error")
        assert busy[-1]["error"] == "ai_busy" and busy[-1]["client_id"] == "q2"
        for ws in (a, b):
            await ws.until(lambda f: f["type"] == "new_message" and f["message"]["sender_id"] == "ai")
            frames = ws.frames
            deltas = [f for f in frames if f["type"] == "ai_delta"]
            assert [d["index"] for d in deltas] == list(range(len(deltas)))
            answer = frames[-1]["message"]
            assert deltas and "".join(d["delta"] for d in deltas) == answer["text"]
            assert "Carrier 24ACC6 split system" in answer["text"] and "1 earlier messages" in answer["text"]
            assert answer["citations"] == [
                {"n": 1, "source": "Carrier 24ACC6 split system Service Manual", "page": 1, "document_id": "echo"}
            ]
            assert any(f["type"] == "ai_requested" for f in frames)
    r = await t1.get(f"/api/v1/diagnostic/sessions/{sid}/messages", params={"kind": "ai"})
    assert [m["sender_id"] for m in r.json()["data"]] == ["ai"]


async def test_leaving_closes_the_leavers_sockets_only(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=2)
    t1, t2 = team.techs
    sid = await start_session(team, t1, invite=[t2])
    async with connect(srv.url, sid, t1.access_token) as a, connect(srv.url, sid, t2.access_token) as b:
        await a.recv()
        await b.recv()
        r = await t2.post(f"/api/v1/diagnostic/sessions/{sid}/leave", json={})
        assert r.status_code == 204, r.text
        assert await b.closed() == 4403
        left = await a.until(lambda f: f["type"] == "participant_left")
        assert left[-1]["participant_id"] == t2.user_id
        await a.send({"type": "ping", "ts": 1})
        assert (await a.until(lambda f: f["type"] == "pong"))[-1]["ts"] == 1
    r = await t2.post(f"/api/v1/diagnostic/sessions/{sid}/messages", json={"text": "bye"})
    assert r.status_code == 403
    r = await t2.post(f"/api/v1/diagnostic/sessions/{sid}/leave", json={})
    assert r.status_code == 409
    assert (await refused(srv.url, sid, t2.access_token))[0] == 403
    r = await t1.get(f"/api/v1/diagnostic/sessions/{sid}")
    left_at = {p["id"]: p["left_at"] for p in r.json()["data"]["participants"]}
    assert left_at[t2.user_id] is not None and left_at[t1.user_id] is None


async def test_first_frame_auth_and_its_deadline(session_server: Any) -> None:
    async with session_server(auth_timeout_s=0.5) as (srv, h):
        team = await field_team(h, technicians=1)
        sid = await start_session(team, team.techs[0])
        async with connect(srv.url, sid, team.techs[0].access_token, first_frame_auth=True) as ws:
            assert (await ws.recv())["type"] == "session_state"
        async with connect(srv.url, sid, None) as silent:
            with trio.fail_after(5):
                error = await silent.recv()
            assert error["type"] == "error" and error["error"] == "unauthenticated"
            assert await silent.closed() == 4401
