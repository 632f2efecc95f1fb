"""Cross-tenant isolation, generated from the route table.

Tenant A owns one object of every kind.  Tenant B's owner (who holds every
permission in B) calls every route that takes an id with A's ids, and must
get 404 (403 for signed object URLs, whose signature is the credential)
and never a byte of A's data.  :data:`MATRIX` says how to fill each route's
path; a route with path parameters that is missing from it fails
:func:`test_matrix_covers_every_route_with_an_id`, so a new route cannot be
forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from typing import Any

from ensemble.gateway import all_routes
from tests.gateway.conftest import Harness, User


@dataclass
class TenantA:
    owner: User
    member: str
    client: str
    equipment: str
    job: str
    hub: str
    printer: str
    file: str
    file_key: str
    session: str
    print_job: str
    document: str
    names: list[str]


@dataclass(frozen=True)
class Entry:
    """How tenant B calls one route with tenant A's objects, and what it must get."""

    params: Callable[[TenantA], dict[str, str]]
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None
    expected: frozenset[int] = frozenset({404})


def _a(name: str, attr: str | None = None) -> Callable[[TenantA], dict[str, str]]:
    return lambda a: {name: getattr(a, attr or name.removesuffix("_id"))}


SIGNED = {"expires": "9999999999", "sig": "forged"}
SINCE = {"start": (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()}

MATRIX: dict[tuple[str, str], Entry] = {
    # members
    ("GET", "/api/v1/users/<uuid:user_id>"): Entry(_a("user_id", "member")),
    ("PATCH", "/api/v1/users/<uuid:user_id>"): Entry(_a("user_id", "member"), {"role": "viewer"}),
    ("DELETE", "/api/v1/users/<uuid:user_id>"): Entry(_a("user_id", "member")),
    # field service
    ("GET", "/api/v1/clients/<uuid:client_id>"): Entry(_a("client_id")),
    ("PATCH", "/api/v1/clients/<uuid:client_id>"): Entry(_a("client_id"), {"name": "Pwned"}),
    ("DELETE", "/api/v1/clients/<uuid:client_id>"): Entry(_a("client_id")),
    ("GET", "/api/v1/equipment/<uuid:equipment_id>"): Entry(_a("equipment_id")),
    ("PATCH", "/api/v1/equipment/<uuid:equipment_id>"): Entry(_a("equipment_id"), {"name": "Pwned"}),
    ("POST", "/api/v1/equipment/<uuid:equipment_id>/assign-client"): Entry(_a("equipment_id"), {"client_id": None}),
    ("DELETE", "/api/v1/equipment/<uuid:equipment_id>"): Entry(_a("equipment_id")),
    ("GET", "/api/v1/jobs/<uuid:job_id>"): Entry(_a("job_id")),
    ("PATCH", "/api/v1/jobs/<uuid:job_id>"): Entry(_a("job_id"), {"title": "Pwned"}),
    ("DELETE", "/api/v1/jobs/<uuid:job_id>"): Entry(_a("job_id")),
    ("GET", "/api/v1/jobs/technician/<uuid:technician_id>"): Entry(_a("technician_id", "member")),
    ("POST", "/api/v1/jobs/<uuid:job_id>/assign"): Entry(_a("job_id"), {"technician_id": "SELF"}),
    ("POST", "/api/v1/jobs/<uuid:job_id>/accept"): Entry(_a("job_id"), {}),
    ("POST", "/api/v1/jobs/<uuid:job_id>/decline"): Entry(_a("job_id"), {"reason": "no"}),
    ("POST", "/api/v1/jobs/<uuid:job_id>/start"): Entry(_a("job_id"), {}),
    ("POST", "/api/v1/jobs/<uuid:job_id>/complete"): Entry(_a("job_id"), {}),
    ("POST", "/api/v1/jobs/<uuid:job_id>/cancel"): Entry(_a("job_id"), {}),
    # diagnostic sessions
    ("GET", "/api/v1/clients/<uuid:client_id>/diagnostic-sessions"): Entry(_a("client_id")),
    ("GET", "/api/v1/diagnostic/sessions/<uuid:session_id>"): Entry(_a("session_id")),
    ("GET", "/api/v1/diagnostic/sessions/<uuid:session_id>/messages"): Entry(_a("session_id")),
    ("POST", "/api/v1/diagnostic/sessions/<uuid:session_id>/messages"): Entry(_a("session_id"), {"text": "hi"}),
    ("POST", "/api/v1/diagnostic/sessions/<uuid:session_id>/readings"): Entry(
        _a("session_id"), {"kind": "pressure", "value": 1, "unit": "psi"}),
    ("POST", "/api/v1/diagnostic/sessions/<uuid:session_id>/attachments"): Entry(_a("session_id"), {"file_id": "FILE"}),
    ("PUT", "/api/v1/diagnostic/sessions/<uuid:session_id>/complete"): Entry(_a("session_id"), {"summary": "done"}),
    ("POST", "/api/v1/diagnostic/sessions/<uuid:session_id>/invite"): Entry(_a("session_id"), {"technician_id": "SELF"}),
    ("POST", "/api/v1/diagnostic/sessions/<uuid:session_id>/leave"): Entry(_a("session_id"), {}),
    # print farm
    ("GET", "/api/v1/hubs/<uuid:hub_id>"): Entry(_a("hub_id")),
    ("PATCH", "/api/v1/hubs/<uuid:hub_id>"): Entry(_a("hub_id"), {"name": "Pwned"}),
    ("POST", "/api/v1/hubs/<uuid:hub_id>/release"): Entry(_a("hub_id"), {}),
    ("GET", "/api/v1/printers/<uuid:printer_id>"): Entry(_a("printer_id")),
    ("PATCH", "/api/v1/printers/<uuid:printer_id>"): Entry(_a("printer_id"), {"name": "Pwned"}),
    ("DELETE", "/api/v1/printers/<uuid:printer_id>"): Entry(_a("printer_id")),
    ("GET", "/api/v1/printers/<uuid:printer_id>/telemetry"): Entry(_a("printer_id"), query=SINCE),
    ("GET", "/api/v1/print-jobs/<uuid:job_id>"): Entry(_a("job_id", "print_job")),
    ("POST", "/api/v1/print-jobs/<uuid:job_id>/pause"): Entry(_a("job_id", "print_job"), {}),
    ("POST", "/api/v1/print-jobs/<uuid:job_id>/resume"): Entry(_a("job_id", "print_job"), {}),
    ("POST", "/api/v1/print-jobs/<uuid:job_id>/cancel"): Entry(_a("job_id", "print_job"), {}),
    # files and manuals
    ("GET", "/api/v1/files/<uuid:file_id>"): Entry(_a("file_id")),
    ("GET", "/api/v1/files/<uuid:file_id>/download"): Entry(_a("file_id")),
    ("GET", "/api/v1/files/<uuid:file_id>/content"): Entry(_a("file_id")),
    ("DELETE", "/api/v1/files/<uuid:file_id>"): Entry(_a("file_id")),
    # The signature is the credential here: without A's signature, B is refused.
    ("GET", "/api/v1/objects/<path:key>"): Entry(lambda a: {"key": a.file_key}, query=SIGNED, expected=frozenset({403})),
    ("GET", "/api/v1/knowledge/documents/<uuid:document_id>"): Entry(_a("document_id")),
    ("GET", "/api/v1/knowledge/documents/<uuid:document_id>/content"): Entry(_a("document_id")),
    ("DELETE", "/api/v1/knowledge/documents/<uuid:document_id>"): Entry(_a("document_id")),
    # administration
    ("GET", "/api/v1/admin/actors/<kind>/<key>"): Entry(lambda a: {"kind": "dashboard", "key": a.owner.tenant_id}),
}


def test_matrix_covers_every_route_with_an_id() -> None:
    with_params = {(spec.method, spec.rule) for spec in all_routes() if spec.path_params}
    missing = with_params - set(MATRIX)
    stale = set(MATRIX) - with_params
    assert not missing, f"add these routes to the cross-tenant MATRIX: {sorted(missing)}"
    assert not stale, f"these MATRIX entries name no route: {sorted(stale)}"


async def _populate(h: Harness) -> TenantA:
    owner = await h.signup(tenant_name="Tenant A")
    member = await h.member(owner, "technician", name="Alice Secret-Tech")
    client = (await owner.post("/api/v1/clients", json={"name": "A-Client-Secret", "email": "a@client.example"})).json()["data"]
    equipment = (await owner.post(
        "/api/v1/equipment", json={"name": "A-Furnace-Secret", "client_id": client["id"], "serial_number": "SN-A-1"}
    )).json()["data"]
    job = (await owner.post(
        "/api/v1/jobs", json={"client_id": client["id"], "equipment_id": equipment["id"], "title": "A-Job-Secret"}
    )).json()["data"]
    assert (await owner.post(f"/api/v1/jobs/{job['id']}/assign", json={"technician_id": member.user_id})).status_code == 200
    hub_id, code = await h.provision_hub()
    hub = (await owner.post("/api/v1/hubs/claim", json={"claim_code": code, "name": "A-Hub-Secret"})).json()["data"]
    printer = (await owner.post(
        "/api/v1/printers", json={"name": "A-Printer-Secret", "model": "X1C", "hub_id": hub["id"]}
    )).json()["data"]
    file = (await owner.post(
        "/api/v1/files", files={"file": ("A-File-Secret.txt", b"A-CONTENT-SECRET", "text/plain")}
    )).json()["data"]
    key = await h.db.fetchval("SELECT object_key FROM files WHERE id = $1", uuid.UUID(file["id"]))
    r = await owner.post("/api/v1/diagnostic/sessions", json={"client_id": client["id"], "title": "A-Session-Secret"})
    assert r.status_code == 201, r.text
    session = r.json()["data"]
    print_file = (await owner.post(
        "/api/v1/files", files={"file": ("A-Print-Secret.3mf", b"PK-A-PRINT", "model/3mf")}
    )).json()["data"]
    r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": print_file["id"]})
    assert r.status_code == 201, r.text
    print_job = r.json()["data"]
    r = await owner.post(
        "/api/v1/knowledge/documents",
        files={"file": ("A-Manual-Secret.md", b"# A-MANUAL-SECRET\n\nCheck the filter.\n", "text/markdown")},
    )
    assert r.status_code == 201, r.text
    document = r.json()["data"]
    return TenantA(
        owner=owner, member=member.user_id, client=client["id"], equipment=equipment["id"], job=job["id"],
        hub=hub["id"], printer=printer["id"], file=file["id"], file_key=key, session=session["id"],
        print_job=print_job["id"], document=document["id"],
        names=["A-Client-Secret", "A-Furnace-Secret", "A-Job-Secret", "A-Hub-Secret", "A-Printer-Secret",
               "A-File-Secret", "A-CONTENT-SECRET", "Alice Secret-Tech", "a@client.example", "A-Session-Secret",
               "A-Print-Secret", "A-Manual-Secret", "A-MANUAL-SECRET"],
    )


async def _snapshot(a: TenantA) -> dict[str, Any]:
    paths = [
        f"/api/v1/users/{a.member}", f"/api/v1/clients/{a.client}", f"/api/v1/equipment/{a.equipment}",
        f"/api/v1/jobs/{a.job}", f"/api/v1/hubs/{a.hub}", f"/api/v1/printers/{a.printer}", f"/api/v1/files/{a.file}",
        f"/api/v1/diagnostic/sessions/{a.session}", f"/api/v1/print-jobs/{a.print_job}",
        f"/api/v1/knowledge/documents/{a.document}",
    ]
    out = {}
    for path in paths:
        r = await a.owner.get(path)
        assert r.status_code == 200, (path, r.text)
        out[path] = r.json()["data"]
    out["content"] = (await a.owner.get(f"/api/v1/files/{a.file}/content")).content
    return out


async def test_tenant_b_cannot_reach_tenant_a(h: Harness) -> None:
    a = await _populate(h)
    b = await h.signup(tenant_name="Tenant B")
    secrets = [a.owner.tenant_id, a.member, a.client, a.equipment, a.job, a.hub, a.printer, a.file, a.session,
               a.print_job, a.document, *a.names]
    before = await _snapshot(a)
    audit_before = await h.count("audit_log", "tenant_id = $1::uuid", a.owner.tenant_id)
    # B's own objects, for bodies that must name something of B's.
    b_file = (await b.post("/api/v1/files", files={"file": ("b.txt", b"B", "text/plain")})).json()["data"]["id"]
    stand_ins = {"SELF": b.user_id, "FILE": b_file}

    problems = []
    for (method, rule), entry in MATRIX.items():
        spec = next(s for s in all_routes() if (s.method, s.rule) == (method, rule))
        path = spec.openapi_path.format(**entry.params(a))
        kwargs: dict[str, Any] = {}
        if entry.body is not None:
            kwargs["json"] = {k: stand_ins.get(v, v) if isinstance(v, str) else v for k, v in entry.body.items()}
        if entry.query is not None:
            kwargs["params"] = entry.query
        r = await b.request(method, path, **kwargs)
        if r.status_code not in entry.expected:
            problems.append(f"{method} {rule}: expected {sorted(entry.expected)}, got {r.status_code} {r.text[:200]}")
        leaked = [s for s in secrets if s in r.text and s not in path]
        if leaked:
            problems.append(f"{method} {rule}: response leaks {leaked}")
    assert not problems, "\n".join(problems)

    # Lists in B never show A's rows either.
    lists = [spec.openapi_path for spec in all_routes()
             if spec.method == "GET" and spec.authenticated and not spec.path_params and spec.query is not None
             and "limit" in spec.query.model_fields]
    assert "/api/v1/clients" in lists and "/api/v1/audit" in lists
    for path in lists:
        r = await b.get(path)
        assert r.status_code == 200, path
        assert not [s for s in secrets if s in r.text], path

    # Nothing of A changed, and nothing was audited in A's name.
    assert await _snapshot(a) == before
    assert await h.count("audit_log", "tenant_id = $1::uuid", a.owner.tenant_id) == audit_before


async def test_cross_tenant_references_in_bodies_are_refused(h: Harness) -> None:
    a = await _populate(h)
    b = await h.signup(tenant_name="Tenant B")
    before = {t: await h.count(t) for t in ("equipment", "jobs", "printers")}
    r = await b.post("/api/v1/equipment", json={"name": "Mine", "client_id": a.client})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "client_id"
    r = await b.post("/api/v1/jobs", json={"title": "Mine", "client_id": a.client})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "client_id"
    r = await b.post("/api/v1/printers", json={"name": "Mine", "model": "P1S", "hub_id": a.hub})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "hub_id"
    assert {t: await h.count(t) for t in before} == before
