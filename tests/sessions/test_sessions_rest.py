"""The REST side: create, list with filters and pages, history pages, invite/leave rules, roles."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from tests.gateway.conftest import Harness
from tests.server import RunningServer
from tests.sessions.conftest import count_rows, field_team, start_session


async def test_create_validates_the_client_job_and_equipment(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=1)
    tech = team.techs[0]
    url = "/api/v1/diagnostic/sessions"
    for body, field in (
        ({"client_id": str(uuid.uuid4())}, "client_id"),
        ({"client_id": team.client_id, "equipment_id": str(uuid.uuid4())}, "equipment_id"),
        ({"client_id": team.client_id, "job_id": str(uuid.uuid4())}, "job_id"),
        ({"client_id": team.client_id, "mode": "chatty"}, "mode"),
        ({"client_id": team.client_id, "tenant_id": str(uuid.uuid4())}, "tenant_id"),
    ):
        r = await tech.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in {d["field"] for d in r.json()["details"]}, r.text
    # Equipment of another client is refused; a job brings its equipment along.
    other = (await team.owner.post("/api/v1/clients", json={"name": "Other"})).json()["data"]["id"]
    r = await tech.post(url, json={"client_id": other, "equipment_id": team.equipment_id})
    assert r.status_code == 422
    job = await team.owner.post(
        "/api/v1/jobs", json={"client_id": team.client_id, "equipment_id": team.equipment_id, "title": "No cooling"}
    )
    assert job.status_code == 201, job.text
    r = await tech.post(url, json={"client_id": team.client_id, "job_id": job.json()["data"]["id"], "mode": "expert"})
    assert r.status_code == 201, r.text
    session = r.json()["data"]
    assert session["equipment_id"] == team.equipment_id and session["mode"] == "expert"
    assert session["equipment"] == {"name": "Rooftop unit 2", "manufacturer": "Carrier", "model": "24ACC6",
                                    "type": "split system", "serial": "SN-123"}
    assert session["client_name"] == "Hotel Aurora" and session["status"] == "active"
    roles = {p["id"]: p["role"] for p in session["participants"]}
    assert roles == {tech.user_id: "primary", "ai": "ai"}


async def test_list_filter_and_page_sessions(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=2)
    t1, t2 = team.techs
    other_client = (await team.owner.post("/api/v1/clients", json={"name": "Bakery"})).json()["data"]["id"]
    first = await start_session(team, t1)
    second = await start_session(team, t2, invite=[t1])
    r = await t2.post("/api/v1/diagnostic/sessions", json={"client_id": other_client, "mode": "quick"})
    third = r.json()["data"]["id"]
    r = await t2.request("PUT", f"/api/v1/diagnostic/sessions/{third}/complete", json={"summary": "Pilot light relit."})
    assert r.status_code == 200

    async def ids(**params: object) -> list[str]:
        r = await t1.get("/api/v1/diagnostic/sessions", params=params)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["data"]]

    assert await ids() == [third, second, first]  # newest first
    assert await ids(client_id=team.client_id) == [second, first]
    assert await ids(status="completed") == [third]
    assert await ids(status="active", technician_id=t1.user_id) == [second, first]
    assert await ids(technician_id=t2.user_id) == [third, second]
    assert await ids(mode="quick") == [third]
    assert await ids(sort="created_at") == [first, second, third]
    later = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    assert await ids(created_from=later) == []
    assert await ids(created_to=later, client_id=other_client) == [third]
    r = await t1.get("/api/v1/diagnostic/sessions", params={"limit": 1, "offset": 1})
    assert r.json()["meta"] == {"total": 3, "limit": 1, "offset": 1} and [s["id"] for s in r.json()["data"]] == [second]
    r = await t1.get("/api/v1/diagnostic/sessions", params={"status": "paused"})
    assert r.status_code == 422
    r = await t1.get(f"/api/v1/clients/{other_client}/diagnostic-sessions")
    assert [s["id"] for s in r.json()["data"]] == [third]
    r = await t1.get(f"/api/v1/clients/{uuid.uuid4()}/diagnostic-sessions")
    assert r.status_code == 404
    # Another tenant sees none of it.
    stranger = (await field_team(h, technicians=1, tenant_name="Elsewhere")).techs[0]
    r = await stranger.get("/api/v1/diagnostic/sessions")
    assert r.json()["data"] == []
    r = await stranger.get(f"/api/v1/clients/{team.client_id}/diagnostic-sessions")
    assert r.status_code == 404


async def test_history_pages_in_session_order(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=1)
    tech = team.techs[0]
    sid = await start_session(team, tech)
    url = f"/api/v1/diagnostic/sessions/{sid}"
    offsets = []
    for n in range(5):
        r = await tech.post(f"{url}/messages", json={"text": f"note {n}", "client_id": f"n{n}"})
        assert r.status_code == 201, r.text
        offsets.append(r.json()["data"]["offset"])
    r = await tech.post(f"{url}/readings", json={"kind": "return_air_temp", "value": 74.5, "unit": "F"})
    assert r.status_code == 201 and r.json()["data"]["message"]["text"] == "return_air_temp: 74.5 F"
    r = await tech.post(f"{url}/readings", json={"kind": "return_air_temp", "value": "74", "unit": "F"})
    assert r.status_code == 422
    r = await tech.get(f"{url}/messages", params={"limit": 2, "offset": 2})
    body = r.json()
    assert [m["text"] for m in body["data"]] == ["note 2", "note 3"] and body["meta"]["total"] == 6
    r = await tech.get(f"{url}/messages", params={"after_offset": offsets[3]})
    assert [m["text"] for m in r.json()["data"]] == ["note 4", "return_air_temp: 74.5 F"]
    r = await tech.get(f"{url}/messages", params={"kind": "reading"})
    assert [m["reading"]["value"] for m in r.json()["data"]] == [74.5]
    r = await tech.post(f"{url}/messages", json={"text": "x" * 4001})
    assert r.status_code == 413 and "at most 4000 characters" in r.json()["message"]
    r = await tech.get(f"/api/v1/diagnostic/sessions/{uuid.uuid4()}/messages")
    assert r.status_code == 404


async def test_who_may_invite_leave_complete_and_read(srv: RunningServer, h: Harness) -> None:
    team = await field_team(h, technicians=3)
    t1, t2, t3 = team.techs
    viewer = await h.member(team.owner, "viewer", name="Auditor")
    sid = await start_session(team, t1)
    url = f"/api/v1/diagnostic/sessions/{sid}"
    # A technician who is not a participant cannot invite or post; a viewer cannot even try.
    r = await t2.post(f"{url}/invite", json={"technician_id": t3.user_id})
    assert r.status_code == 403
    r = await t2.post(f"{url}/messages", json={"text": "hi"})
    assert r.status_code == 403
    r = await viewer.post(f"{url}/messages", json={"text": "hi"})
    assert r.status_code == 403 and "lacks permission" in r.json()["message"]
    # But every member of the tenant may read the record.
    assert (await viewer.get(url)).status_code == 200
    assert (await viewer.get(f"{url}/messages")).status_code == 200
    # Invitees must be field members of this tenant.
    r = await t1.post(f"{url}/invite", json={"technician_id": viewer.user_id})
    assert r.status_code == 422
    r = await t1.post(f"{url}/invite", json={"technician_id": str(uuid.uuid4())})
    assert r.status_code == 422
    # A dispatcher (the owner) may bring people in without taking part.
    r = await team.owner.post(f"{url}/invite", json={"technician_id": t2.user_id})
    assert r.status_code == 200 and r.json()["data"]["role"] == "invited"
    r = await t1.post(f"{url}/invite", json={"technician_id": t2.user_id})  # again: no change
    assert r.status_code == 200
    assert (await t2.post(f"{url}/messages", json={"text": "on my way"})).status_code == 201
    # Leaving is for participants.
    assert (await t3.post(f"{url}/leave", json={})).status_code == 409
    assert (await t2.post(f"{url}/leave", json={})).status_code == 204
    # The summary is required and bounded; the owner may complete without taking part.
    r = await team.owner.request("PUT", f"{url}/complete", json={})
    assert r.status_code == 422
    r = await team.owner.request("PUT", f"{url}/complete", json={"summary": "Closed by dispatch."})
    assert r.status_code == 200 and r.json()["data"]["completed_by"] == team.owner.user_id
    r = await t1.post(f"{url}/invite", json={"technician_id": t3.user_id})
    assert r.status_code == 409 and r.json()["error"] == "session_completed"


async def test_another_tenant_gets_404_on_every_session_route(srv: RunningServer, h: Harness) -> None:
    """Generated from the route table, so a new session route cannot skip the check."""
    from ensemble.gateway import all_routes

    team = await field_team(h, technicians=1)
    tech = team.techs[0]
    sid = await start_session(team, tech)
    await tech.post(f"/api/v1/diagnostic/sessions/{sid}/messages", json={"text": "A-SECRET-NOTE"})
    file_id = (await tech.post("/api/v1/files", files={"file": ("a.jpg", b"\xff\xd8xx", "image/jpeg")})).json()["data"]["id"]
    stranger = (await field_team(h, technicians=1, tenant_name="Elsewhere")).owner  # every permission in B
    bodies = {
        "messages": {"text": "pwned"}, "readings": {"kind": "p", "value": 1, "unit": ""}, "attachments": {"file_id": file_id},
        "complete": {"summary": "pwned"}, "invite": {"technician_id": stranger.user_id}, "leave": {},
    }
    specs = [s for s in all_routes() if "diagnostic" in s.rule and s.path_params]
    assert len(specs) >= 9
    before = await count_rows(h, sid)
    for spec in specs:
        path = spec.openapi_path.format(session_id=sid, client_id=team.client_id)
        body = bodies.get(spec.rule.rsplit("/", 1)[-1]) if spec.method != "GET" else None
        r = await stranger.request(spec.method, path, json=body)
        assert r.status_code == 404, (spec.method, spec.rule, r.status_code, r.text)
        assert "A-SECRET" not in r.text and "Hotel Aurora" not in r.text
    assert await count_rows(h, sid) == before
