"""JSON and msgpack give the same data, both ways; errors negotiate too."""

from __future__ import annotations

import json

import msgpack
import pytest

from tests.gateway.conftest import Harness

MSGPACK_TYPES = ["application/vnd.msgpack", "application/x-msgpack"]


@pytest.mark.parametrize("media_type", MSGPACK_TYPES)
async def test_msgpack_and_json_give_the_same_data(h: Harness, media_type: str) -> None:
    owner = await h.signup()
    body = {"name": "Ünïcode Client ✓", "phone": "+1 555 0100", "status": "active"}
    r = await owner.post(
        "/api/v1/clients", content=msgpack.packb(body), headers={"Content-Type": media_type, "Accept": media_type}
    )
    assert r.status_code == 201, r.content
    assert r.headers["content-type"] == media_type
    created = msgpack.unpackb(r.content)["data"]
    assert created["name"] == body["name"]

    for path in (f"/api/v1/clients/{created['id']}", "/api/v1/clients", "/api/v1/me", "/api/v1/audit"):
        as_json = await owner.get(path)
        as_msgpack = await owner.get(path, headers={"Accept": media_type})
        assert as_json.headers["content-type"] == "application/json"
        assert as_msgpack.headers["content-type"] == media_type
        assert msgpack.unpackb(as_msgpack.content) == as_json.json(), path
    # UUIDs and timestamps are strings in msgpack too.
    assert isinstance(created["id"], str) and isinstance(created["created_at"], str)


async def test_json_is_the_default_and_q_values_count(h: Harness) -> None:
    owner = await h.signup()
    for accept in (None, "*/*", "text/html", "application/json", "application/vnd.msgpack;q=0.1, application/json"):
        headers = {"Accept": accept} if accept else {}
        r = await owner.get("/api/v1/me", headers=headers)
        assert r.headers["content-type"] == "application/json", accept
        json.loads(r.content)
    r = await owner.get("/api/v1/me", headers={"Accept": "application/json;q=0.5, application/x-msgpack"})
    assert r.headers["content-type"] == "application/x-msgpack"


async def test_errors_are_negotiated_too(h: Harness) -> None:
    r = await h.http.get("/api/v1/clients", headers={"Accept": "application/vnd.msgpack"})
    assert r.status_code == 401
    assert msgpack.unpackb(r.content)["error"] == "unauthenticated"
    r = await h.http.get("/api/v1/nowhere", headers={"Accept": "application/vnd.msgpack"})
    assert r.status_code == 404
    assert msgpack.unpackb(r.content) == {"error": "not_found", "message": msgpack.unpackb(r.content)["message"]}


async def test_msgpack_bodies_are_checked_like_json(h: Harness) -> None:
    owner = await h.signup()
    headers = {"Content-Type": "application/vnd.msgpack"}
    before = await h.count("clients")
    cases = [
        (b"\xc1", 400),  # never-used msgpack byte
        (msgpack.packb({"name": b"bytes are not text"}), 400),
        (msgpack.packb({1: "int key"}), 400),
        (msgpack.packb({"name": float("nan")}), 400),
        (msgpack.packb([1, 2, 3]), 422),
        (msgpack.packb({"name": 7}), 422),
        (msgpack.packb({"name": "ok", "tenant_id": "x"}), 422),
        (msgpack.packb({"name": "x" * 201}), 422),
    ]
    for payload, status in cases:
        r = await owner.post("/api/v1/clients", content=payload, headers=headers)
        assert r.status_code == status, (payload[:20], r.text)
    assert await h.count("clients") == before
