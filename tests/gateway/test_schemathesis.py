"""Property-based API testing with schemathesis against the OpenAPI document.

Every operation gets generated requests, authenticated as a tenant owner,
in two modes: *positive* (valid per the spec; path ids are sometimes real
ids seeded beforehand, so the 2xx paths and their response schemas are
exercised, not only 404s) and *negative* (invalid per the spec).  The
checks: no 5xx, every status and content type is declared, every body
and header matches its schema.

schemathesis calls the server with blocking ``requests``, so it runs in a
worker thread while the server keeps serving on this test's trio loop.
Destructive operations (DELETE, release, logout) run last.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import requests
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ensemble.gateway import build_spec
from tests.gateway.conftest import Harness, User
from tests.server import running_server

MAX_EXAMPLES = 20
# A request that takes longer is a failure (a hung handler), not a slow test.
REQUEST_TIMEOUT_S = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


async def _seed(h: Harness, owner: User) -> dict[str, list[str]]:
    """A few real objects of each kind, so generated requests can hit them."""
    ids: dict[str, list[str]] = {}
    members = [await h.member(owner, role) for role in ("technician", "operator", "viewer")]
    ids["user_id"] = ids["technician_id"] = [m.user_id for m in members]
    clients = [(await owner.post("/api/v1/clients", json={"name": f"Client {i}"})).json()["data"]["id"] for i in range(3)]
    ids["client_id"] = clients
    ids["equipment_id"] = [
        (await owner.post("/api/v1/equipment", json={"name": f"Unit {i}", "client_id": clients[i]})).json()["data"]["id"]
        for i in range(3)
    ]
    jobs = []
    for i in range(4):
        job = (await owner.post("/api/v1/jobs", json={"title": f"Job {i}", "client_id": clients[i % 3]})).json()["data"]
        jobs.append(job["id"])
    for job_id in jobs[1:]:
        await owner.post(f"/api/v1/jobs/{job_id}/assign", json={"technician_id": members[0].user_id})
    await owner.post(f"/api/v1/jobs/{jobs[2]}/accept", json={})
    ids["job_id"] = jobs
    hubs = []
    for i in range(2):
        _, code = await h.provision_hub()
        hubs.append((await owner.post("/api/v1/hubs/claim", json={"claim_code": code, "name": f"Hub {i}"})).json()["data"]["id"])
    ids["hub_id"] = hubs
    ids["printer_id"] = [
        (await owner.post("/api/v1/printers", json={"name": f"P{i}", "model": "X1C", "hub_id": hubs[i % 2]})).json()["data"]["id"]
        for i in range(3)
    ]
    ids["file_id"] = [
        (await owner.post("/api/v1/files", files={"file": (f"f{i}.txt", b"hello", "text/plain")})).json()["data"]["id"]
        for i in range(2)
    ]
    return ids


def _destructive(op: Any) -> bool:
    return op.method.upper() == "DELETE" or op.path.endswith(("/release", "/logout"))


def _with_real_ids(strategy: Any, op: Any, ids: dict[str, list[str]]) -> Any:
    names = [p.name for p in op.path_parameters if p.name in ids]
    if not names:
        return strategy

    def use(case: Any, values: tuple[str, ...]) -> Any:
        for name, value in zip(names, values):
            case.path_parameters[name] = value
        return case

    real = st.tuples(strategy, st.tuples(*(st.sampled_from(ids[n]) for n in names))).map(lambda t: use(*t))
    return st.one_of(strategy, real)


def _describe(exc: BaseException) -> str:
    """The leaves of an exception group (hypothesis wraps what schemathesis found)."""
    if isinstance(exc, BaseExceptionGroup):
        # schemathesis' own group carries the reproducing curl command in its text.
        head = str(exc) if "curl" in str(exc) else ""
        return "\n".join([head, *(_describe(sub) for sub in exc.exceptions)]).strip()
    return f"{type(exc).__name__}: {exc}"


def _run(spec: dict[str, Any], base_url: str, headers: dict[str, str], logout_headers: dict[str, str],
         ids: dict[str, list[str]]) -> tuple[list[str], dict[str, dict[int, int]]]:
    session = requests.Session()
    try:
        return _run_all(session, spec, base_url, headers, logout_headers, ids)
    finally:
        # Close our keep-alive connections before the server shuts down.
        session.close()


def _run_all(session: requests.Session, spec: dict[str, Any], base_url: str, headers: dict[str, str],
             logout_headers: dict[str, str], ids: dict[str, list[str]]) -> tuple[list[str], dict[str, dict[int, int]]]:
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=_destructive)  # stable: the rest keep the spec's order
    failures: list[str] = []
    seen: dict[str, dict[int, int]] = {}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for op in operations:
            has_input = bool(op.path_parameters or op.query or op.body)
            if mode is GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid
            strategy = op.as_strategy(generation_mode=mode)
            if mode is GenerationMode.POSITIVE:
                strategy = _with_real_ids(strategy, op, ids)
            auth = logout_headers if op.path.endswith("/logout") else headers
            label = f"{mode.value} {op.label}"

            @given(case=strategy)
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call_and_validate(
                    base_url=base_url, session=session, headers=auth, checks=CHECKS, timeout=REQUEST_TIMEOUT_S
                )
                counts = seen.setdefault(label, {})
                counts[response.status_code] = counts.get(response.status_code, 0) + 1

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # one failure must not hide the others
                failures.append(f"{label}:\n{_describe(exc)}")
    return failures, seen


async def test_schemathesis_finds_no_server_errors_or_spec_violations(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path) as srv, srv.client() as http:
        h = Harness(srv, http)
        owner = await h.signup()
        ids = await _seed(h, owner)
        logout_session = await h.login(owner.email)
        started = time.monotonic()
        failures, seen = await trio.to_thread.run_sync(
            partial(_run, build_spec(), srv.url, owner.headers, logout_session.headers, ids)
        )
        elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    # The run really exercised the API: successes, not only refusals.
    ok = sum(n for counts in seen.values() for status, n in counts.items() if 200 <= status < 300)
    total = sum(n for counts in seen.values() for n in counts.values())
    assert total > 1000 and ok > 150, (total, ok, seen)
    print(f"schemathesis: {total} requests, {ok} 2xx, {elapsed:.1f} s")
