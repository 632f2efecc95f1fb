"""The admin actor view lists and inspects a tenant's own live session actors only."""

from __future__ import annotations

from tests.gateway.conftest import Harness
from tests.sessions.conftest import field_team, start_session


async def test_admin_sees_own_live_sessions_only(h: Harness) -> None:
    team = await field_team(h, technicians=1)
    session_id = await start_session(team, team.owner)
    other = await field_team(h, technicians=1, tenant_name="Other Co")
    other_session = await start_session(other, other.owner)

    r = await team.owner.get("/api/v1/admin/actors")
    assert r.status_code == 200, r.text
    listed = {(a["kind"], a["key"]) for a in r.json()["data"]["actors"]}
    assert ("session", session_id) in listed
    assert ("session", other_session) not in listed

    r = await team.owner.get(f"/api/v1/admin/actors/session/{session_id}")
    assert r.status_code == 200, r.text
    detail = r.json()["data"]["state"]
    assert detail["statistics"]["offset"] >= 1
    assert any(e["type"] == "session_created" for e in detail["recent_events"])

    # Another tenant's session is indistinguishable from a missing one.
    assert (await team.owner.get(f"/api/v1/admin/actors/session/{other_session}")).status_code == 404
