"""Bad frames and over-limit sends: an error frame with a code, the socket stays usable, nothing stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgpack
import pytest

from tests.gateway.conftest import Harness
from tests.server import RunningServer
from tests.sessions.conftest import connect, count_rows, field_team, start_session

BAD_FRAMES: list[tuple[str, Any, str, str | None]] = [
    # (what, frame: dict or raw str/bytes, error code, field named in details)
    ("not JSON", "not json{", "invalid_frame", None),
    ("not msgpack", b"\xc1\xc1", "invalid_frame", None),
    ("not an object", "[1, 2]", "invalid_frame", None),
    ("oversized frame", json.dumps({"type": "message", "text": "x" * (70 << 10)}), "payload_too_large", None),
    ("no type", {"text": "hi"}, "invalid_input", "type"),
    ("type not a string", {"type": 5}, "invalid_input", "type"),
    ("unknown type", {"type": "teleport"}, "unknown_type", None),
    ("missing text", {"type": "message", "client_id": "m1"}, "invalid_input", "text"),
    ("text not a string", {"type": "message", "text": 5}, "invalid_input", "text"),
    ("blank text", {"type": "message", "text": "  "}, "invalid_input", "text"),
    ("lone surrogate", '{"type": "message", "text": "\\ud800"}', "invalid_input", "text"),
    ("NUL in text", {"type": "message", "text": "a\u0000b"}, "invalid_input", "text"),
    ("reading unit with a lone surrogate", '{"type": "reading", "kind": "p", "value": 1, "unit": "\\udc00"}',
     "invalid_input", "unit"),
    ("reading value NaN", '{"type": "reading", "kind": "p", "value": NaN, "unit": "F"}', "invalid_input", "value"),
    ("text over the limit", {"type": "message", "text": "x" * 4001}, "payload_too_large", "text"),
    ("bad client id", {"type": "message", "text": "hi", "client_id": "has spaces"}, "invalid_input", "client_id"),
    ("client id not a string", {"type": "message", "text": "hi", "client_id": 7}, "invalid_input", "client_id"),
    ("bad sent_at", {"type": "message", "text": "hi", "sent_at": "yesterday"}, "invalid_input", "sent_at"),
    ("ask_ai not a bool", {"type": "message", "text": "hi", "ask_ai": "yes"}, "invalid_input", "ask_ai"),
    ("unknown field", {"type": "message", "text": "hi", "colour": "red"}, "invalid_input", "colour"),
    ("reading value not a number", {"type": "reading", "kind": "p", "value": "high", "unit": "psi"}, "invalid_input", "value"),
    ("reading without unit", {"type": "reading", "kind": "p", "value": 1}, "invalid_input", "unit"),
    ("reading bad equipment", {"type": "reading", "kind": "p", "value": 1, "unit": "", "equipment_id": "x"},
     "invalid_input", "equipment_id"),
    ("attachment bad file id", {"type": "attachment", "file_id": "nope"}, "invalid_input", "file_id"),
    ("attachment unknown file", {"type": "attachment", "file_id": str(uuid.uuid4())}, "invalid_input", "file_id"),
    ("attachment unknown field", {"type": "attachment", "file_id": str(uuid.uuid4()), "x": 1}, "invalid_input", "x"),
    ("auth again", {"type": "auth", "token": "whatever"}, "invalid_input", None),
]


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_bad_frames_get_an_error_frame_and_store_nothing(srv: RunningServer, h: Harness, fmt: str) -> None:
    team = await field_team(h, technicians=1)
    tech = team.techs[0]
    sid = await start_session(team, tech)
    async with connect(srv.url, sid, tech.access_token, fmt=fmt) as ws:
        assert (await ws.recv())["type"] == "session_state"
        before = await count_rows(h, sid)
        for what, frame, code, field in BAD_FRAMES:
            if isinstance(frame, (str, bytes)):
                await ws.send_raw(frame)
            else:
                await ws.send(frame)
            error = await ws.recv()
            assert error["type"] == "error", (what, error)
            assert error["error"] == code, (what, error)
            if field is not None:
                assert field in {d["field"] for d in error.get("details", [])}, (what, error)
            if what == "oversized frame":  # refused by the lane, before any parsing
                assert "larger than" in error["message"], error
        # msgpack-only shapes: binary where text belongs.
        if fmt == "msgpack":
            await ws.send_raw(msgpack.packb({"type": "message", "text": b"raw bytes"}, use_bin_type=True))
            assert (await ws.recv())["error"] == "invalid_input"
        assert await count_rows(h, sid) == before
        # The limit is in the message.
        await ws.send({"type": "message", "text": "x" * 4001})
        assert "at most 4000 characters" in (await ws.recv())["message"]
        # Still usable.
        await ws.send({"type": "ping", "ts": 42})
        assert await ws.recv() == {"type": "pong", "ts": 42}
        await ws.send({"type": "message", "client_id": "ok", "text": "still here"})
        ack = await ws.until(lambda f: f["type"] == "ack")
        assert ack[-1]["duplicate"] is False
    events, messages, _ = await count_rows(h, sid)
    assert messages == before[1] + 1


async def test_send_rate_limit_answers_with_an_error_frame_not_a_disconnect(session_server: Any) -> None:
    async with session_server(send_burst=3, send_per_minute=6) as (srv, h):
        team = await field_team(h, technicians=2)
        t1, t2 = team.techs
        sid = await start_session(team, t1, invite=[t2])
        async with connect(srv.url, sid, t1.access_token) as a, connect(srv.url, sid, t2.access_token) as b:
            await a.recv()
            await b.recv()
            for n in range(4):
                await a.send({"type": "message", "client_id": f"m{n}", "text": f"message {n}"})
            limited = await a.until(lambda f: f["type"] == "error")
            error = limited[-1]
            assert error["error"] == "rate_limited" and error["client_id"] == "m3" and error["retry_after"] > 0
            assert "limit 3 per 30 s" in error["message"]
            # Not disconnected; the other participant has their own budget.
            await a.send({"type": "ping"})
            assert (await a.until(lambda f: f["type"] == "pong"))[-1] == {"type": "pong"}
            await b.send({"type": "message", "client_id": "b", "text": "mine"})
            assert (await b.until(lambda f: f["type"] == "ack"))[-1]["client_id"] == "b"
            # REST shares the participant's budget.
            r = await t1.post(f"/api/v1/diagnostic/sessions/{sid}/messages", json={"text": "via REST"})
            assert r.status_code == 429 and r.json()["error"] == "rate_limited" and "Retry-After" in r.headers
        rows = await h.db.fetchval("SELECT count(*) FROM diagnostic_messages WHERE session_id = $1::uuid", sid)
        assert rows == 3 + 1


async def test_attachments_photos_through_the_files_api(session_server: Any) -> None:
    async with session_server(max_attachment_bytes=1000) as (srv, h):
        team = await field_team(h, technicians=1)
        tech = team.techs[0]
        sid = await start_session(team, tech)

        async def upload(name: str, size: int) -> str:
            r = await tech.post("/api/v1/files", files={"file": (name, b"\xff\xd8" + b"x" * (size - 2), "image/jpeg")})
            assert r.status_code == 201, r.text
            return str(r.json()["data"]["id"])

        small, big = await upload("coil.jpg", 800), await upload("panorama.jpg", 1001)
        async with connect(srv.url, sid, tech.access_token) as ws:
            await ws.recv()
            before = await count_rows(h, sid)
            await ws.send({"type": "attachment", "file_id": big, "client_id": "p0"})
            error = await ws.recv()
            assert error["error"] == "payload_too_large" and "at most 1000 bytes" in error["message"]
            assert await count_rows(h, sid) == before
            await ws.send({"type": "attachment", "file_id": small, "caption": "Iced evaporator coil", "client_id": "p1"})
            added = (await ws.until(lambda f: f["type"] == "attachment_added"))[-1]["message"]
            assert added["attachment"]["name"] == "coil.jpg" and added["attachment"]["size_bytes"] == 800
            assert added["text"] == "Iced evaporator coil"
            async with srv.client() as anonymous:  # the signed URL needs no token
                r = await anonymous.get(added["attachment"]["url"])
                assert r.status_code == 200 and len(r.content) == 800
        r = await tech.post(f"/api/v1/diagnostic/sessions/{sid}/attachments", json={"file_id": big})
        assert r.status_code == 413 and "at most 1000 bytes" in r.json()["message"]
        r = await tech.post(f"/api/v1/diagnostic/sessions/{sid}/attachments", json={"file_id": str(uuid.uuid4())})
        assert r.status_code == 422
        # History hands out fresh URLs.
        r = await tech.get(f"/api/v1/diagnostic/sessions/{sid}/messages", params={"kind": "attachment"})
        [item] = r.json()["data"]
        assert item["attachment"]["file_id"] == small and item["attachment"]["url"].startswith("http")
