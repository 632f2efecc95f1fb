"""End to end over HTTP and WebSocket: upload a PDF manual, search it, ask in a session, cache, usage, tenancy."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgpack

from ensemble.knowledge import sample_documents
from tests.gateway.conftest import Harness, User
from tests.knowledge.helpers import encrypted
from tests.server import RunningServer, running_server
from tests.sessions.conftest import Team, connect, start_session

from .conftest import E7_QUESTION, MANUAL_PDF, online
from .fake_anthropic import FakeAnthropic, Reply

DOCS = "/api/v1/knowledge/documents"
SEARCH = "/api/v1/knowledge/search"


async def _team(h: Harness, tenant_name: str = "Zephyr Service Co") -> Team:
    owner = await h.signup(tenant_name=tenant_name)
    tech = await h.member(owner, "technician", name="Tech 1")
    r = await owner.post("/api/v1/clients", json={"name": "Hotel Aurora"})
    client_id = r.json()["data"]["id"]
    r = await owner.post("/api/v1/equipment", json={
        "name": "Roof unit 3", "client_id": client_id, "manufacturer": "Zephyr", "model_number": "ZX-90",
        "system_type": "split system",
    })
    assert r.status_code == 201, r.text
    return Team(owner, [tech], client_id, r.json()["data"]["id"])


async def _upload(user: User, data: bytes = MANUAL_PDF, name: str = "zx90.pdf", ctype: str = "application/pdf",
                  **fields: str) -> Any:
    return await user.post(DOCS, files={"file": (name, data, ctype)}, data=fields)


async def _ask(ws: Any, text: str, client_id: str) -> tuple[list[str], dict[str, Any]]:
    await ws.send({"type": "message", "client_id": client_id, "text": text, "ask_ai": True})
    frames = await ws.until(lambda f: f["type"] == "new_message" and f["message"]["sender_id"] == "ai")
    return [f["delta"] for f in frames if f["type"] == "ai_delta"], frames[-1]["message"]


async def test_pdf_upload_search_streamed_answer_cache_and_usage(
    kdb_url: str, tmp_path: Path, fake: FakeAnthropic
) -> None:
    fake.script.append(Reply(["Code E7: the outdoor fan motor is locked [1]. ", "Check the fan capacitor [1]."],
                             input_tokens=2000, output_tokens=50, cache_write_tokens=1000, cache_read_tokens=0))
    async with running_server(kdb_url, tmp_path, **online(fake, ai_assistant="auto")) as srv, srv.client() as http:
        h = Harness(srv, http)
        team = await _team(h)
        tech = team.techs[0]
        r = await _upload(team.owner, manufacturer="Zephyr", model="ZX-90", equipment_type="split system")
        assert r.status_code == 201, r.text
        doc = r.json()["data"]
        assert (doc["outcome"], doc["scope"], doc["pages"], doc["format"]) == ("created", "tenant", 3, "pdf")
        assert doc["source"] == "Zephyr ZX-90 Service Manual" and doc["manufacturer"] == "Zephyr"

        # Search finds the right page, for a technician, in JSON and msgpack.
        r = await tech.get(SEARCH, params={"q": E7_QUESTION, "manufacturer": "zephyr", "equipment_type": "split system", "k": 2})
        assert r.status_code == 200, r.text
        hits = r.json()["data"]
        assert hits[0]["citation"] == {"source": "Zephyr ZX-90 Service Manual", "page": 2, "document_id": doc["id"]}
        assert "Code E7 means the outdoor fan motor is locked" in hits[0]["text"] and hits[0]["scope"] == "tenant"
        assert len(hits) <= 2 and hits[0]["score"] > 0
        r = await tech.get(SEARCH, params={"q": E7_QUESTION}, headers={"Accept": "application/vnd.msgpack"})
        assert msgpack.unpackb(r.content)["data"][0]["citation"]["page"] == 2

        # A question in a diagnostic session: streamed deltas, then the answer with its citation.
        sid = await start_session(team, tech)
        async with connect(srv.url, sid, tech.access_token) as ws:
            await ws.recv()
            deltas, answer = await _ask(ws, E7_QUESTION, "q1")
            assert deltas == ["Code E7: the outdoor fan motor is locked [1]. ", "Check the fan capacitor [1]."]
            assert answer["kind"] == "ai" and answer["text"] == "".join(deltas)
            assert answer["citations"] == [
                {"n": 1, "source": "Zephyr ZX-90 Service Manual", "page": 2, "document_id": doc["id"]}
            ]
            context = fake.requests[0]["system"][2]["text"]
            assert "[1] Zephyr ZX-90 Service Manual p.2" in context and "Manufacturer: Zephyr" in fake.requests[0]["system"][1]["text"]

            # The same question again: answered from the cache, the API saw exactly one request.
            deltas2, again = await _ask(ws, E7_QUESTION.upper(), "q2")
            assert fake.calls == 1
            assert again["text"] == answer["text"] and again["citations"] == answer["citations"]
            assert again["usage"]["cached"] is True and "".join(deltas2) == again["text"]

        # The usage report: one model answer, one cache hit, tokens and cost from the price table.
        r = await team.owner.get("/api/v1/ai/usage")
        assert r.status_code == 200, r.text
        report = r.json()["data"]
        totals = report["totals"]
        assert (totals["requests"], totals["answered"], totals["cache_hits"], totals["failed"]) == (2, 1, 1, 0)
        assert (totals["input_tokens"], totals["output_tokens"], totals["cache_write_tokens"]) == (2000, 50, 1000)
        assert totals["cost_usd"] == round((2000 * 3 + 50 * 15 + 1000 * 3.75) / 1e6, 6)
        assert totals["cache_hit_rate"] == 0.5
        assert len(report["days"]) == 30 and report["days"][-1]["requests"] == 2
        assert report["days"][-1]["models"][0]["model"] == "claude-sonnet-4-6"
        today = report["end"]
        r = await team.owner.get("/api/v1/ai/usage", params={"from": today, "to": today})
        assert [d["day"] for d in r.json()["data"]["days"]] == [today]
        r = await tech.get("/api/v1/ai/usage")
        assert r.status_code == 403
        metrics = (await http.get("/metrics")).text
        assert 'ensemble_ai_answers{outcome="answered"} 1.0' in metrics
        assert 'ensemble_ai_answers{outcome="cache_hit"} 1.0' in metrics
        assert 'ensemble_knowledge_chunks{scope="tenants"} 3.0' in metrics


async def test_tenants_never_see_each_others_manuals_search_or_answers(
    fresh_db_url: str, tmp_path: Path, fake: FakeAnthropic
) -> None:
    async with running_server(fresh_db_url, tmp_path, **online(fake, ai_assistant="auto")) as srv, srv.client() as http:
        h = Harness(srv, http)
        a, b = await _team(h, "Tenant A"), await _team(h, "Tenant B")
        sample = sample_documents()[0]
        glob = (await srv.services.knowledge.ingest(sample.data, filename=sample.filename, tenant_id=None)).document
        r = await _upload(a.owner)
        private = r.json()["data"]

        # B: no trace of A's manual, in search, listing, reads and deletes.
        r = await b.techs[0].get(SEARCH, params={"q": "Zephyr ZX-90 code E7 outdoor fan motor locked", "k": 20})
        assert r.status_code == 200 and all(hit["citation"]["document_id"] != private["id"] for hit in r.json()["data"])
        r = await b.owner.get(DOCS)
        assert [d["id"] for d in r.json()["data"]] == [str(glob["id"])]
        for method, path in (("GET", f"{DOCS}/{private['id']}"), ("GET", f"{DOCS}/{private['id']}/content"),
                             ("DELETE", f"{DOCS}/{private['id']}")):
            r = await b.owner.request(method, path)
            assert r.status_code == 404 and r.json()["error"] == "not_found", (method, path)

        # Both see the global manual; nobody deletes it over REST.
        for team in (a, b):
            r = await team.techs[0].get(f"{DOCS}/{glob['id']}")
            assert r.status_code == 200 and r.json()["data"]["scope"] == "global"
        r = await a.owner.get(f"{DOCS}/{glob['id']}/content")
        assert r.status_code == 200 and r.content == sample.data
        r = await a.owner.delete(f"{DOCS}/{glob['id']}")
        assert r.status_code == 403 and "ensemble knowledge" in r.json()["message"]
        r = await a.owner.get(DOCS, params={"scope": "tenant"})
        assert [d["id"] for d in r.json()["data"]] == [private["id"]]

        # A technician reads but does not manage.
        tech = a.techs[0]
        assert (await tech.get(f"{DOCS}/{private['id']}")).status_code == 200
        assert (await _upload(tech, name="other.pdf")).status_code == 403
        assert (await tech.delete(f"{DOCS}/{private['id']}")).status_code == 403

        # B's assistant is given B's context only, even for A's exact question.
        sid = await start_session(b, b.techs[0])
        async with connect(srv.url, sid, b.techs[0].access_token) as ws:
            await ws.recv()
            _, answer = await _ask(ws, E7_QUESTION, "q1")
        assert "Zephyr ZX-90 Service Manual" not in str(fake.requests[-1])
        assert all(c["document_id"] != private["id"] for c in answer["citations"])

        # A deletes its manual: gone from search and listing.
        r = await a.owner.delete(f"{DOCS}/{private['id']}")
        assert r.status_code == 204
        r = await tech.get(SEARCH, params={"q": E7_QUESTION, "k": 20})
        assert all(hit["citation"]["document_id"] != private["id"] for hit in r.json()["data"])


async def _tenant_state(srv: RunningServer, tenant_id: str) -> tuple[int, list[str], dict[str, Any]]:
    rows = int(await srv.services.db.fetchval(
        "SELECT count(*) FROM knowledge_documents WHERE tenant_id = $1", uuid.UUID(tenant_id)
    ))
    keys = [o.key for o in await srv.services.objects.list(f"tenants/{tenant_id}/")]
    return rows, keys, srv.services.knowledge.statistics()


async def test_bad_uploads_are_refused_with_the_exact_error_and_store_nothing(kdb_url: str, tmp_path: Path) -> None:
    async with running_server(kdb_url, tmp_path, ai_assistant="offline", max_upload_bytes=64 << 10) as srv, \
            srv.client() as http:
        h = Harness(srv, http)
        owner = await h.signup()
        assert (await _upload(owner)).status_code == 201
        before = await _tenant_state(srv, owner.tenant_id)
        cases = [
            (dict(data=encrypted(MANUAL_PDF, user_password="pw"), name="locked.pdf"), 422, "invalid_input", "encrypted"),
            (dict(data=b"%PDF-1.7 garbage", name="junk.pdf"), 422, "invalid_input", "PDF"),
            (dict(data=b"", name="empty.txt", ctype="text/plain"), 422, "invalid_input", "empty"),
            (dict(data=b"\xff\xfe\x00binary" * 50, name="notes.txt", ctype="text/plain"), 422, "invalid_input", "UTF-8"),
            (dict(data=b"PK\x03\x04", name="manual.docx", ctype="application/vnd.openxmlformats"), 415,
             "unsupported_media_type", "unsupported"),
            (dict(data=b"# Big\n" + b"word " * 20_000, name="big.md", ctype="text/markdown"), 413, "payload_too_large", "at most"),
            (dict(data=b"# Manual\nText", name="m.md", ctype="text/markdown", category="recipes"), 422, "invalid_input", "category"),
            (dict(data=b"# Manual\nText", name="m.md", ctype="text/markdown", colour="red"), 422, "invalid_input", "unknown"),
        ]
        for kwargs, status, code, needle in cases:
            r = await _upload(owner, **kwargs)  # type: ignore[arg-type]
            assert (r.status_code, r.json()["error"]) == (status, code), (kwargs.get("name"), r.text)
            assert needle in r.text, r.text
            assert await _tenant_state(srv, owner.tenant_id) == before, f"{kwargs.get('name')} changed something"
        r = await owner.post(DOCS, json={"file": "x"})
        assert r.status_code == 415
        # Query validation.
        for params in ({"q": ""}, {"q": "x", "k": 0}, {"q": "x", "k": 21}, {"q": "x", "category": "recipes"}):
            assert (await owner.get(SEARCH, params=params)).status_code == 422, params
        for params in ({"from": "2024-02-01", "to": "2024-01-01"}, {"from": "2020-01-01", "to": "2024-01-01"},
                       {"from": "yesterday"}):
            r = await owner.get("/api/v1/ai/usage", params=params)
            assert r.status_code == 422 and r.json()["error"] == "invalid_input", params
