"""Operations: metrics, request ids, CORS, the OpenAPI document, rate limits, admin actor view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily

from ensemble.errors import RateLimited
from ensemble.gateway import all_routes, build_spec, register_collector
from ensemble.gateway._ratelimit import RateLimiter
from tests.gateway.conftest import Harness
from tests.server import running_server


async def test_metrics_expose_requests_latency_pool_and_registered_collectors(h: Harness) -> None:
    owner = await h.signup()
    await owner.get("/api/v1/clients")
    await owner.get("/api/v1/clients/00000000-0000-0000-0000-000000000000")
    register_collector(h.srv.services, lambda: [("ensemble_test_live_actors", "Live actors.", {"kind": "session"}, 3)])
    register_collector(h.srv.services, lambda: [GaugeMetricFamily("ensemble_test_family", "A family.", value=7)])

    def broken() -> list[object]:
        raise RuntimeError("collector bug")

    register_collector(h.srv.services, broken)
    r = await h.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'ensemble_http_requests_total{method="GET",route="/api/v1/clients",status="200"} 1.0' in text
    assert 'route="/api/v1/clients/<uuid:client_id>",status="404"' in text  # templates, not raw paths
    assert "ensemble_http_request_duration_seconds_bucket" in text
    assert "ensemble_db_pool_size" in text and "ensemble_db_pool_idle" in text
    assert "ensemble_websocket_connections" in text or "# TYPE ensemble_websocket_connections gauge" in text
    assert 'ensemble_test_live_actors{kind="session"} 3.0' in text
    assert "ensemble_test_family 7.0" in text
    assert "ensemble_rate_limit_buckets" in text


async def test_metrics_token(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path, metrics_token="scrape-me-please") as srv, srv.client() as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})).status_code == 200


async def test_request_id_is_echoed_or_generated(h: Harness) -> None:
    r = await h.http.get("/healthz", headers={"X-Request-ID": "abc-123.def"})
    assert r.headers["X-Request-ID"] == "abc-123.def"
    r = await h.http.get("/api/v1/nope")
    assert len(r.headers["X-Request-ID"]) == 32
    r = await h.http.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["X-Request-ID"] != "bad id\twith spaces"
    # Errors carry it too, and the audit trail records it.
    owner = await h.signup()
    r = await owner.post("/api/v1/clients", json={"name": "Traced"}, headers={"X-Request-ID": "trace-me-42"})
    assert r.headers["X-Request-ID"] == "trace-me-42"
    audit = (await owner.get("/api/v1/audit", params={"entity": "client"})).json()["data"]
    assert audit[0]["request_id"] == "trace-me-42"


async def test_request_id_is_bound_into_log_lines(database_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    async with running_server(database_url, tmp_path, log_level="info") as srv, srv.client() as http:
        await http.get("/healthz", headers={"X-Request-ID": "log-line-id"})
    err = capfd.readouterr().err
    assert "log-line-id" in err and "/healthz" in err


async def test_cors(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path, cors_origins="https://app.example.com") as srv, srv.client() as http:
        pre = await http.options(
            "/api/v1/clients",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"},
        )
        assert pre.status_code == 204
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
        r = await http.get("/healthz", headers={"Origin": "https://app.example.com"})
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert "X-Request-ID" in r.headers["Access-Control-Expose-Headers"]
        r = await http.get("/healthz", headers={"Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in r.headers


async def test_no_cors_headers_by_default(h: Harness) -> None:
    r = await h.http.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_openapi_lists_every_route_with_its_permission(h: Harness) -> None:
    r = await h.http.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    operations = {(method.upper(), path): op for path, item in spec["paths"].items() for method, op in item.items()}
    for route in all_routes():
        op = operations[(route.method, route.openapi_path)]
        assert op["x-permission"] == route.permission
        assert op["responses"], route.endpoint
        if route.authenticated:
            assert op["security"] == [{"bearerAuth": []}]
            assert {"401", "403"} <= set(op["responses"])
        if route.path_params:
            assert "404" in op["responses"]
    assert len(operations) == len(all_routes())
    assert json.loads(json.dumps(build_spec(version=spec["info"]["version"]))) == spec
    r = await h.http.get("/api/v1/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in r.text and "/api/v1/jobs/{job_id}/accept" in r.text


async def test_per_user_and_per_tenant_limits(database_url: str, tmp_path: Path) -> None:
    async with running_server(
        database_url, tmp_path, rate_limit_user_per_minute=3, rate_limit_tenant_per_minute=5
    ) as srv, srv.client() as http:
        h = Harness(srv, http)
        owner = await h.signup()
        codes = [(await owner.get("/api/v1/me")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        second = await h.login(owner.email)  # same user, another session: same user bucket
        assert (await second.get("/api/v1/me")).status_code == 429
        # A colleague has a bucket of their own, but shares the tenant's: 3 of its 5
        # tokens are spent (requests refused per user do not count against the tenant).
        colleague_email = "colleague-" + owner.email
        await h.db.execute(
            "INSERT INTO users (email, name, password_hash) SELECT $1, 'C', password_hash FROM users WHERE email = $2",
            colleague_email, owner.email,
        )
        await h.db.execute(
            "INSERT INTO memberships (tenant_id, user_id, role) SELECT $1::uuid, id, 'viewer' FROM users WHERE email = $2",
            owner.tenant_id, colleague_email,
        )
        colleague = await h.login(colleague_email)
        assert [(await colleague.get("/api/v1/me")).status_code for _ in range(2)] == [200, 200]
        r = await colleague.get("/api/v1/me")
        assert r.status_code == 429 and r.json()["details"]["limit"] == 5
        assert int(r.headers["Retry-After"]) >= 1


def test_rate_limiter_refills_and_bounds_memory() -> None:
    now = [0.0]
    limiter = RateLimiter(max_buckets=100, clock=lambda: now[0])
    for _ in range(5):
        limiter.hit("k", per_period=5, period_s=10.0)
    with pytest.raises(RateLimited) as info:
        limiter.hit("k", per_period=5, period_s=10.0)
    assert info.value.retry_after == pytest.approx(2.0)
    now[0] += 2.0
    limiter.hit("k", per_period=5, period_s=10.0)  # one token back

    for i in range(1000):
        limiter.hit(("ip", i), per_period=5, period_s=10.0)
    assert len(limiter) == 100  # LRU cap
    now[0] += 3600
    limiter.hit("fresh", per_period=5, period_s=10.0)  # triggers the idle sweep
    assert len(limiter) <= 2


async def test_admin_actor_view_is_tenant_scoped(h: Harness) -> None:
    owner = await h.signup()
    r = await owner.get("/api/v1/admin/actors")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["available"] is True and "live" in data["statistics"]
    other = await h.signup()
    r = await owner.get(f"/api/v1/admin/actors/dashboard/{other.tenant_id}")
    assert r.status_code == 404
    r = await owner.get("/api/v1/admin/actors/session/not-mine")
    assert r.status_code == 404
    technician = await h.member(owner, "technician")
    assert (await technician.get("/api/v1/admin/actors")).status_code == 403


async def test_readyz(h: Harness) -> None:
    r = await h.http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "objects": "ok"}}
