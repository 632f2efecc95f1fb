"""The auth life cycle over HTTP: signup, login, refresh rotation and reuse, logout."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from tests.gateway.conftest import PASSWORD, Harness, unique_email
from tests.server import running_server


async def test_signup_login_refresh_logout_lifecycle(h: Harness) -> None:
    owner = await h.signup(tenant_name="Cool Air Ltd")
    assert owner.role == "owner"

    me = await owner.get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()["data"]
    assert body["user"]["email"] == owner.email
    assert body["tenant"]["id"] == owner.tenant_id
    assert body["tenant"]["name"] == "Cool Air Ltd"
    assert body["role"] == "owner"
    assert {"members.manage", "print_jobs.manage", "sessions.participate"} <= set(body["permissions"])

    # Login opens a second, independent session.
    second = await h.login(owner.email)
    assert second.tenant_id == owner.tenant_id
    assert second.refresh_token != owner.refresh_token

    # Refresh rotates: a new pair, and the old refresh token is spent.
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": second.refresh_token})
    assert r.status_code == 200, r.text
    rotated = r.json()["data"]
    assert rotated["refresh_token"] != second.refresh_token
    assert rotated["token_type"] == "bearer"
    r = await h.http.get("/api/v1/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert r.status_code == 200

    # Rotating again with the successor works (the chain goes on).
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert r.status_code == 200
    latest = r.json()["data"]

    # Logout ends the session: its access and refresh tokens stop working.
    r = await h.http.post(
        "/api/v1/auth/logout", json={}, headers={"Authorization": f"Bearer {latest['access_token']}"}
    )
    assert r.status_code == 204
    r = await h.http.get("/api/v1/me", headers={"Authorization": f"Bearer {latest['access_token']}"})
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": latest["refresh_token"]})
    assert r.status_code == 401

    # The first session is untouched by the second one's logout.
    assert (await owner.get("/api/v1/me")).status_code == 200


async def test_reused_refresh_token_revokes_the_whole_family(h: Harness) -> None:
    owner = await h.signup()
    first = owner.refresh_token
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    current = r.json()["data"]

    # Someone replays the spent token (a thief, or the victim after the thief rotated).
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401
    assert "already used" in r.json()["message"]

    # Every token of the family is dead now: the latest refresh token...
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": current["refresh_token"]})
    assert r.status_code == 401
    # ...and the access tokens, the original one included.
    for access in (current["access_token"], owner.access_token):
        r = await h.http.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})
        assert r.status_code == 401
    reason = await h.db.fetchval(
        "SELECT revoked_reason FROM auth_sessions WHERE user_id = $1", __import__("uuid").UUID(owner.user_id)
    )
    assert reason == "reuse"
    # Logging in again works: reuse ends a session, not the account.
    assert (await h.login(owner.email)).access_token


async def test_logout_with_refresh_token_revokes_that_session_too(h: Harness) -> None:
    owner = await h.signup()
    other = await h.login(owner.email)
    r = await owner.post("/api/v1/auth/logout", json={"refresh_token": other.refresh_token})
    assert r.status_code == 204
    assert (await other.get("/api/v1/me")).status_code == 401
    assert (await owner.get("/api/v1/me")).status_code == 401


async def test_login_failures_look_the_same(h: Harness) -> None:
    owner = await h.signup()
    wrong = await h.http.post("/api/v1/auth/login", json={"email": owner.email, "password": "not the password"})
    unknown = await h.http.post("/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    # Email matching ignores case.
    assert (await h.login(owner.email.upper())).user_id == owner.user_id


async def test_passwords_are_argon2id_hashes(h: Harness) -> None:
    owner = await h.signup()
    stored = await h.db.fetchval("SELECT password_hash FROM users WHERE lower(email) = lower($1)", owner.email)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_duplicate_signup_is_conflict(h: Harness) -> None:
    owner = await h.signup()
    r = await h.http.post(
        "/api/v1/auth/signup",
        json={"email": owner.email, "password": PASSWORD, "name": "X", "tenant_name": "Another"},
    )
    assert r.status_code == 409
    assert r.json()["details"] == [{"field": "email", "message": "already registered"}]


async def test_user_in_two_tenants_picks_first_or_requested(h: Harness) -> None:
    first_owner = await h.signup(tenant_name="First")
    second_owner = await h.signup(tenant_name="Second")
    r = await second_owner.post("/api/v1/users", json={"email": first_owner.email, "role": "viewer"})
    assert r.status_code == 201, r.text

    default = await h.login(first_owner.email)
    assert default.tenant_id == first_owner.tenant_id and default.role == "owner"
    chosen = await h.login(first_owner.email, tenant_id=second_owner.tenant_id)
    assert chosen.tenant_id == second_owner.tenant_id and chosen.role == "viewer"
    me = (await chosen.get("/api/v1/me")).json()["data"]
    assert {t["tenant_id"] for t in me["tenants"]} == {first_owner.tenant_id, second_owner.tenant_id}

    # A tenant the account is not in cannot be picked.
    stranger = await h.signup(tenant_name="Third")
    r = await h.http.post(
        "/api/v1/auth/login", json={"email": first_owner.email, "password": PASSWORD, "tenant_id": stranger.tenant_id}
    )
    assert r.status_code == 403


async def test_tenant_comes_from_the_token_only(h: Harness) -> None:
    a = await h.signup(tenant_name="A")
    b = await h.signup(tenant_name="B")
    # A header naming another tenant changes nothing...
    r = await a.post("/api/v1/clients", json={"name": "Mine"}, headers={"X-Company-Id": b.tenant_id, "X-Tenant-Id": b.tenant_id})
    assert r.status_code == 201
    assert await h.count("clients", "tenant_id = $1::uuid", a.tenant_id) == 1
    assert await h.count("clients", "tenant_id = $1::uuid", b.tenant_id) == 0
    # ...and a body naming it is refused outright.
    r = await a.post("/api/v1/clients", json={"name": "Sneaky", "tenant_id": b.tenant_id})
    assert r.status_code == 422
    assert r.json()["details"] == [{"field": "tenant_id", "message": "set by the server; cannot be sent"}]


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t, s: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), id="bad-signature"),
        pytest.param(lambda t, s: jwt.encode({**jwt.decode(t, options={"verify_signature": False})}, "x" * 32), id="other-key"),
        pytest.param(
            lambda t, s: jwt.encode({**jwt.decode(t, options={"verify_signature": False})}, None, algorithm="none"),
            id="alg-none",
        ),
        pytest.param(
            lambda t, s: jwt.encode({**jwt.decode(t, options={"verify_signature": False}), "exp": int(time.time()) - 60}, s),
            id="expired",
        ),
        pytest.param(lambda t, s: "not-a-jwt", id="garbage"),
    ],
)
async def test_forged_or_expired_access_tokens_are_refused(h: Harness, mangle) -> None:  # type: ignore[no-untyped-def]
    owner = await h.signup()
    secret = (Path(h.srv.services.settings.data_dir) / "jwt.key").read_text().strip()
    token = mangle(owner.access_token, bytes.fromhex(secret))
    r = await h.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"


async def test_missing_token_is_401(h: Harness) -> None:
    r = await h.http.get("/api/v1/clients")
    assert r.status_code == 401
    r = await h.http.get("/api/v1/clients", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401


async def test_jwt_secret_is_generated_once_and_kept(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path) as srv, srv.client() as http:
        harness = Harness(srv, http)
        owner = await harness.signup()
        key_file = Path(srv.services.settings.data_dir) / "jwt.key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        key = key_file.read_text()
    # A restart with the same data directory accepts the old token.
    async with running_server(database_url, tmp_path) as srv, srv.client() as http:
        assert key_file.read_text() == key
        r = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {owner.access_token}"})
        assert r.status_code == 200


async def test_auth_endpoints_are_rate_limited_per_ip(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path, rate_limit_auth_per_minute=3) as srv, srv.client() as http:
        statuses = []
        for _ in range(5):
            r = await http.post("/api/v1/auth/login", json={"email": unique_email(), "password": "whatever1"})
            statuses.append(r.status_code)
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
        assert r.json()["error"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 60


async def test_me_lists_exactly_the_permissions_of_the_role(h: Harness) -> None:
    # The console hides controls from these; the server still checks each call.
    owner = await h.signup()
    viewer = await h.member(owner, "viewer")
    body = (await viewer.get("/api/v1/me")).json()["data"]
    assert body["role"] == "viewer"
    assert "print_jobs.read" in body["permissions"]
    assert not {"print_jobs.manage", "members.manage", "sessions.participate"} & set(body["permissions"])
    assert body["permissions"] == sorted(body["permissions"])
