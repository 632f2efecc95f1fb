"""Fixtures for the gateway's end-to-end tests: a running server and a client harness."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ensemble.persistence.repos import hubs as hubs_repo
from tests.objects.conftest import moto_endpoint  # noqa: F401 - the object store's moto server, reused
from tests.server import RunningServer, running_server

PASSWORD = "correct horse battery"


@dataclass
class User:
    """A logged-in user of one tenant, with a client that sends their token."""

    http: httpx.AsyncClient
    email: str
    user_id: str
    tenant_id: str
    role: str
    access_token: str
    refresh_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


class Harness:
    def __init__(self, srv: RunningServer, http: httpx.AsyncClient) -> None:
        self.srv = srv
        self.http = http

    @property
    def db(self) -> Any:
        return self.srv.services.db

    def _user(self, email: str, data: dict[str, Any]) -> User:
        return User(
            http=self.http, email=email, user_id=data["user"]["id"] if "user" in data else "",
            tenant_id=data["tenant_id"], role=data["role"],
            access_token=data["access_token"], refresh_token=data["refresh_token"],
        )

    async def signup(self, *, email: str | None = None, tenant_name: str = "Acme HVAC") -> User:
        email = email or unique_email("owner")
        r = await self.http.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD, "name": "Owner", "tenant_name": tenant_name},
        )
        assert r.status_code == 201, r.text
        return self._user(email, r.json()["data"])

    async def login(self, email: str, password: str = PASSWORD, tenant_id: str | None = None) -> User:
        body: dict[str, Any] = {"email": email, "password": password}
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        r = await self.http.post("/api/v1/auth/login", json=body)
        assert r.status_code == 200, r.text
        return self._user(email, r.json()["data"])

    async def member(self, owner: User, role: str, *, name: str = "Member") -> User:
        """A new account with ``role`` in ``owner``'s tenant, logged in there."""
        email = unique_email(role)
        r = await owner.post("/api/v1/users", json={"email": email, "role": role, "name": name, "password": PASSWORD})
        assert r.status_code == 201, r.text
        return await self.login(email, tenant_id=owner.tenant_id)

    async def provision_hub(self) -> tuple[str, str]:
        """A factory-fresh hub and a live claim code for it."""
        hub_id, _key = await self.db.run(hubs_repo.provision)
        code, _expires = await self.db.run(hubs_repo.issue_claim_code, hub_id, 600)
        return str(hub_id), code

    async def count(self, table: str, where: str = "true", *args: Any) -> int:
        return int(await self.db.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", *args))


@pytest.fixture
async def srv(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(database_url, tmp_path) as server:
        yield server


@pytest.fixture
async def h(srv: RunningServer) -> AsyncIterator[Harness]:
    async with srv.client() as http:
        yield Harness(srv, http)
