"""Bad input gets the documented 4xx, with the exact error code, and stores nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gateway.conftest import Harness, User

TABLES = ("tenants", "users", "memberships", "clients", "equipment", "jobs", "hubs", "printers", "files", "audit_log")


async def _counts(h: Harness) -> dict[str, int]:
    return {table: await h.count(table) for table in TABLES}


def _raw(body: str | bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body if isinstance(body, bytes) else body.encode(), "headers": {"Content-Type": content_type}}


# (method, path, request kwargs, status, error code, fields named in details or None)
BODY_CASES = [
    pytest.param("POST", "/api/v1/clients", _raw('{"name": "x"'), 400, "malformed_body", None, id="truncated-json"),
    pytest.param("POST", "/api/v1/clients", _raw("{'name': 'x'}"), 400, "malformed_body", None, id="single-quotes"),
    pytest.param("POST", "/api/v1/clients", _raw('{"name": NaN}'), 400, "malformed_body", None, id="nan"),
    pytest.param("POST", "/api/v1/clients", _raw(b'{"name": "\xff\xfe"}'), 400, "malformed_body", None, id="not-utf8"),
    pytest.param("POST", "/api/v1/clients", _raw("[" * 100_000 + "]" * 100_000), 400, "malformed_body", None, id="deep-nesting"),
    pytest.param("POST", "/api/v1/clients", _raw('["name"]'), 422, "invalid_input", ["body"], id="not-an-object"),
    pytest.param("POST", "/api/v1/clients", _raw("name=x", "application/x-www-form-urlencoded"), 415,
                 "unsupported_media_type", None, id="form-encoded"),
    pytest.param("POST", "/api/v1/clients", _raw('{"name": "x"}', "text/plain"), 415, "unsupported_media_type", None,
                 id="text-plain"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": 42}}, 422, "invalid_input", ["name"], id="wrong-type"),
    pytest.param("POST", "/api/v1/clients", {"json": {}}, 422, "invalid_input", ["name"], id="missing-field"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": ""}}, 422, "invalid_input", ["name"], id="empty-name"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": "x" * 201}}, 422, "invalid_input", ["name"], id="long-name"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": "ok", "notes": "n" * 5001}}, 422, "invalid_input", ["notes"],
                 id="long-notes"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": "a\x00b"}}, 422, "invalid_input", ["name"], id="nul-char"),
    pytest.param("POST", "/api/v1/clients", _raw('{"name": "\\ud800"}'), 422, "invalid_input", ["name"], id="lone-surrogate"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": "ok", "status": "deleted"}}, 422, "invalid_input", ["status"],
                 id="bad-enum"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": "ok", "email": "not-an-email"}}, 422, "invalid_input",
                 ["email"], id="bad-email"),
    pytest.param("POST", "/api/v1/clients", {"json": {"name": "ok", "colour": "red", "size": 3}}, 422, "invalid_input",
                 ["colour", "size"], id="unknown-fields"),
    pytest.param("POST", "/api/v1/clients",
                 {"json": {"name": "ok", "id": "00000000-0000-0000-0000-000000000001", "created_by": "me", "companyId": "x"}},
                 422, "invalid_input", ["companyId", "created_by", "id"], id="system-fields"),
    pytest.param("POST", "/api/v1/printers", {"json": {"name": "p", "model": "m", "sort_order": 10**30}}, 422,
                 "invalid_input", ["sort_order"], id="huge-int"),
    pytest.param("POST", "/api/v1/jobs", {"json": {"title": "t", "client_id": "1 OR 1=1"}}, 422, "invalid_input",
                 ["client_id"], id="sql-in-uuid"),
    pytest.param("POST", "/api/v1/jobs",
                 {"json": {"title": "t", "client_id": "00000000-0000-0000-0000-000000000000", "scheduled_date": "2030-01-01T10:00:00"}},
                 422, "invalid_input", ["scheduled_date"], id="naive-datetime"),
    pytest.param("POST", "/api/v1/jobs",
                 {"json": {"title": "t", "client_id": "00000000-0000-0000-0000-000000000000", "scheduled_date": "0001-01-01T00:00:00+14:00"}},
                 422, "invalid_input", ["scheduled_date"], id="year-one"),
    pytest.param("POST", "/api/v1/jobs", {"json": {"title": "t", "client_id": "00000000-0000-0000-0000-000000000000"}},
                 422, "invalid_input", ["client_id"], id="dangling-reference"),
    pytest.param("POST", "/api/v1/users", {"json": {"email": "new@example.com", "role": "superuser"}}, 422,
                 "invalid_input", ["role"], id="unknown-role"),
    pytest.param("POST", "/api/v1/users", {"json": {"email": "new-user@example.com", "role": "viewer"}}, 422,
                 "invalid_input", ["password"], id="new-account-without-password"),
    pytest.param("POST", "/api/v1/auth/signup", {"json": {"email": "x@example.com", "password": "short", "name": "n",
                 "tenant_name": "t"}}, 422, "invalid_input", ["password"], id="short-password"),
    pytest.param("POST", "/api/v1/auth/signup", {"json": {"email": "x@example.com", "password": "long enough pw",
                 "name": "n", "tenant_name": "t", "tenant_slug": "../../admin"}}, 422, "invalid_input", ["tenant_slug"],
                 id="slug-traversal"),
    pytest.param("POST", "/api/v1/hubs/claim", {"json": {"claim_code": "'; DROP TABLE hubs; --", "name": "h"}}, 422,
                 "invalid_input", ["claim_code"], id="sql-claim-code"),
    pytest.param("POST", "/api/v1/hubs/claim", {"json": {"claim_code": "ABCD-EFGH", "name": "h"}}, 404,
                 "not_found", None, id="unknown-claim-code"),
]


@pytest.mark.parametrize("method,path,kwargs,status,code,fields", BODY_CASES)
async def test_bad_bodies(h: Harness, method: str, path: str, kwargs: dict[str, Any], status: int, code: str,
                          fields: list[str] | None) -> None:
    owner = await h.signup()
    before = await _counts(h)
    r = await owner.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in r.text
    if fields is not None:
        assert sorted(d["field"] for d in body["details"]) == fields
        assert all(d["message"] for d in body["details"])
    assert await _counts(h) == before


QUERY_CASES = [
    pytest.param("/api/v1/clients", {"limit": "0"}, ["limit"], id="limit-zero"),
    pytest.param("/api/v1/clients", {"limit": "100000"}, ["limit"], id="limit-huge"),
    pytest.param("/api/v1/clients", {"offset": "-1"}, ["offset"], id="offset-negative"),
    pytest.param("/api/v1/clients", {"limit": "ten"}, ["limit"], id="limit-text"),
    pytest.param("/api/v1/clients", {"sort": "name; DROP TABLE clients"}, ["sort"], id="sql-in-sort"),
    pytest.param("/api/v1/clients", {"sort": "password_hash"}, ["sort"], id="sort-unlisted-column"),
    pytest.param("/api/v1/clients", {"status": "active' OR '1'='1"}, ["status"], id="sql-in-enum-filter"),
    pytest.param("/api/v1/clients", {"colour": "red"}, ["colour"], id="unknown-param"),
    pytest.param("/api/v1/equipment", {"client_id": "../../etc"}, ["client_id"], id="traversal-in-uuid"),
    pytest.param("/api/v1/jobs", {"scheduled_from": "yesterday"}, ["scheduled_from"], id="bad-datetime"),
    pytest.param("/api/v1/audit", {"search": "x"}, ["search"], id="unknown-param-audit"),
]


@pytest.mark.parametrize("path,params,fields", QUERY_CASES)
async def test_bad_query_parameters(h: Harness, path: str, params: dict[str, str], fields: list[str]) -> None:
    owner = await h.signup()
    before = await _counts(h)
    r = await owner.get(path, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_input"
    assert [d["field"] for d in r.json()["details"]] == fields
    assert await _counts(h) == before


async def test_oversized_bodies_are_413(h: Harness) -> None:
    owner = await h.signup()
    before = await _counts(h)
    limit = h.srv.services.settings.max_body_bytes
    big = json.dumps({"name": "x", "notes": "y" * (limit + 10)})
    r = await owner.post("/api/v1/clients", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    async def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = await owner.post("/api/v1/clients", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert await _counts(h) == before


async def test_sql_looking_values_are_just_data(h: Harness) -> None:
    owner = await h.signup()
    nasty = "Robert'); DROP TABLE clients;--"
    r = await owner.post("/api/v1/clients", json={"name": nasty, "notes": "1 OR 1=1; SELECT pg_sleep(10)"})
    assert r.status_code == 201
    assert (await owner.get(f"/api/v1/clients/{r.json()['data']['id']}")).json()["data"]["name"] == nasty
    # Search treats % and _ as literals and quotes as text.
    r = await owner.get("/api/v1/clients", params={"search": "%' OR '1'='1"})
    assert r.status_code == 200 and r.json()["data"] == []
    r = await owner.get("/api/v1/clients", params={"search": "DROP TABLE"})
    assert [c["name"] for c in r.json()["data"]] == [nasty]
    assert await h.count("clients") >= 1  # the table is still there


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/clients/1%20OR%201=1",
        "/api/v1/clients/..%2F..%2Fusers",
        "/api/v1/clients/00000000-0000-0000-0000-000000000000",
        "/api/v1/nothing/here",
        "/api/v1/clients/",
        "/etc/passwd",
    ],
)
async def test_unknown_or_malformed_paths_are_json_404(h: Harness, path: str) -> None:
    owner = await h.signup()
    r = await owner.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "not_found"


async def test_wrong_method_is_json_405(h: Harness) -> None:
    owner = await h.signup()
    r = await owner.request("PUT", "/api/v1/clients")
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers["Allow"]
