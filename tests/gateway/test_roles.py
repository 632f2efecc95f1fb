"""Every role against every authenticated route, generated from the permission table.

For each route and role: a role the table allows never gets 401/403 (it
gets the answer, or 404/409/422 because the ids here are random); a role it
does not allow gets 403 ``forbidden`` before anything else happens.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ensemble.gateway import Role, all_routes
from ensemble.gateway._permissions import PERMISSIONS, allows
from ensemble.gateway._routing import RouteSpec
from tests.gateway.conftest import Harness

AUTHENTICATED = [spec for spec in all_routes() if spec.authenticated]


def test_every_route_declares_a_known_permission() -> None:
    for spec in all_routes():
        assert spec.permission == "public" or spec.permission in PERMISSIONS, spec.endpoint
    # Each permission is used by some route, and granted to some role.
    used = {spec.permission for spec in all_routes()}
    assert set(PERMISSIONS) <= used, set(PERMISSIONS) - used
    assert all(PERMISSIONS[p] for p in PERMISSIONS)


def test_permission_table_shape() -> None:
    """The few rules of the documents, stated once more as a guard against edits."""
    assert allows(Role.VIEWER, "clients.read") and not allows(Role.VIEWER, "clients.write")
    assert all(not allows(Role.VIEWER, p) for p in PERMISSIONS if not p.endswith(".read") and p != "self")
    assert allows(Role.TECHNICIAN, "jobs.work") and not allows(Role.TECHNICIAN, "jobs.manage")
    assert allows(Role.OPERATOR, "jobs.manage") and allows(Role.OPERATOR, "printers.write")
    assert not allows(Role.OPERATOR, "members.manage") and not allows(Role.OPERATOR, "audit.read")
    assert all(allows(Role.OWNER, p) for p in PERMISSIONS)
    assert allows(Role.SERVICE, "printers.read") and not allows(Role.SERVICE, "clients.read")


def _url(spec: RouteSpec, tenant_id: str) -> str:
    values = {}
    for name, converter in spec.path_params:
        if converter == "uuid":
            values[name] = str(uuid.uuid4())
        elif name == "kind":
            values[name] = "dashboard"
        else:
            values[name] = tenant_id
    return spec.openapi_path.format(**values)


def _request_kwargs(spec: RouteSpec) -> dict[str, Any]:
    if spec.body_kind == "multipart":
        return {"files": {"file": ("note.txt", b"hello", "text/plain")}}
    if spec.body_kind == "json":
        return {"json": {}}
    return {}


@pytest.mark.parametrize("role", [r.value for r in Role])
async def test_role_matrix(h: Harness, role: str) -> None:
    owner = await h.signup()
    caller = owner if role == "owner" else await h.member(owner, role)
    # logout would end the caller's session for the routes after it.
    specs = sorted(AUTHENTICATED, key=lambda s: s.endpoint == "auth.logout")
    problems = []
    for spec in specs:
        r = await caller.request(spec.method, _url(spec, caller.tenant_id), **_request_kwargs(spec))
        if allows(role, spec.permission):
            if r.status_code in (401, 403) or r.status_code >= 500:
                problems.append(f"{spec.method} {spec.rule}: {role} is allowed but got {r.status_code} {r.text[:200]}")
        elif r.status_code != 403 or r.json()["error"] != "forbidden":
            problems.append(f"{spec.method} {spec.rule}: {role} lacks {spec.permission} but got {r.status_code}")
    assert not problems, "\n".join(problems)
