"""The service-job state machine: the pure table, then the same rules over HTTP."""

from __future__ import annotations

import itertools

import pytest

from ensemble.errors import Conflict
from ensemble.persistence.repos.job_states import TRANSITIONS, JobAction, JobStatus, allowed_actions, next_status
from tests.gateway.conftest import Harness, User

HAPPY_PATH = [
    ("assign", "assigned"),
    ("accept", "accepted"),
    ("start", "in_progress"),
    ("complete", "completed"),
]


@pytest.mark.parametrize("status,action", list(itertools.product(JobStatus, JobAction)))
def test_transition_table_is_total(status: JobStatus, action: JobAction) -> None:
    """Every (state, action) pair either moves as the table says or is a Conflict naming what is allowed."""
    if (status, action) in TRANSITIONS:
        assert next_status(status, action) is TRANSITIONS[(status, action)]
    else:
        with pytest.raises(Conflict) as info:
            next_status(status, action)
        assert info.value.details["allowed"] == allowed_actions(status)
        assert action.value not in info.value.details["allowed"]


def test_terminal_states_have_no_way_out() -> None:
    for status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
        assert allowed_actions(status) == []


def test_unknown_names_are_conflicts_not_crashes() -> None:
    with pytest.raises(Conflict):
        next_status("exploded", "assign")
    with pytest.raises(Conflict):
        next_status("assigned", "teleport")


async def _setup(h: Harness) -> tuple[User, User, str]:
    owner = await h.signup()
    tech = await h.member(owner, "technician")
    r = await owner.post("/api/v1/clients", json={"name": "Mrs Smith"})
    client_id = r.json()["data"]["id"]
    r = await owner.post("/api/v1/jobs", json={"client_id": client_id, "title": "No cooling", "priority": "high"})
    assert r.status_code == 201, r.text
    job = r.json()["data"]
    assert job["status"] == "unassigned"
    return owner, tech, job["id"]


async def test_job_happy_path_and_audit(h: Harness) -> None:
    owner, tech, job_id = await _setup(h)
    for action, expected in HAPPY_PATH:
        actor = owner if action == "assign" else tech
        body = {"technician_id": tech.user_id} if action == "assign" else {}
        if action == "complete":
            body = {"notes": "Replaced capacitor"}
        r = await actor.post(f"/api/v1/jobs/{job_id}/{action}", json=body)
        assert r.status_code == 200, (action, r.text)
        job = r.json()["data"]
        assert job["status"] == expected
    assert job["assigned_to"] == tech.user_id
    assert job["assigned_by"] == owner.user_id
    assert job["completion_notes"] == "Replaced capacitor"
    for stamp in ("assigned_at", "accepted_at", "started_at", "completed_at"):
        assert job[stamp] is not None
    assert job["updated_by"] == tech.user_id

    r = await owner.get("/api/v1/audit", params={"entity": "job", "entity_id": job_id, "sort": "at"})
    entries = r.json()["data"]
    assert [e["action"] for e in entries] == ["create", "assign", "accept", "start", "complete"]
    assert [e["actor_id"] for e in entries[2:]] == [tech.user_id] * 3
    assert entries[-1]["details"] == {"from": "in_progress", "to": "completed"}

    # Listing by technician finds it; filters and sorting apply.
    r = await owner.get(f"/api/v1/jobs/technician/{tech.user_id}")
    assert [j["id"] for j in r.json()["data"]] == [job_id]
    r = await owner.get("/api/v1/jobs", params={"status": ["completed", "cancelled"], "sort": "-priority"})
    assert [j["id"] for j in r.json()["data"]] == [job_id]
    r = await owner.get("/api/v1/jobs", params={"status": "assigned"})
    assert r.json()["data"] == []


@pytest.mark.parametrize(
    "prefix,action",
    [
        ([], "accept"),  # not assigned yet
        ([], "start"),
        ([], "complete"),
        (["assign"], "start"),  # must accept first
        (["assign"], "complete"),
        (["assign", "accept"], "accept"),
        (["assign", "accept"], "complete"),  # must start first
        (["assign", "decline"], "start"),
        (["assign", "accept", "start"], "assign"),  # no reassigning work in progress
        (["assign", "accept", "start", "complete"], "cancel"),
        (["cancel"], "assign"),
    ],
)
async def test_illegal_transitions_are_409_and_change_nothing(h: Harness, prefix: list[str], action: str) -> None:
    owner, tech, job_id = await _setup(h)
    bodies = {"assign": {"technician_id": tech.user_id}, "decline": {"reason": "Too far"}, "cancel": {}}
    for step in prefix:
        r = await owner.post(f"/api/v1/jobs/{job_id}/{step}", json=bodies.get(step, {}))
        assert r.status_code == 200, (step, r.text)
    before = (await owner.get(f"/api/v1/jobs/{job_id}")).json()["data"]
    audit_before = await h.count("audit_log", "entity_id = $1", job_id)
    r = await owner.post(f"/api/v1/jobs/{job_id}/{action}", json=bodies.get(action, {}))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "conflict"
    assert body["details"]["status"] == before["status"]
    assert action not in body["details"]["allowed"]
    assert (await owner.get(f"/api/v1/jobs/{job_id}")).json()["data"] == before
    assert await h.count("audit_log", "entity_id = $1", job_id) == audit_before


async def test_decline_then_reassign(h: Harness) -> None:
    owner, tech, job_id = await _setup(h)
    other = await h.member(owner, "operator")
    await owner.post(f"/api/v1/jobs/{job_id}/assign", json={"technician_id": tech.user_id})
    r = await tech.post(f"/api/v1/jobs/{job_id}/decline", json={"reason": "Not certified for this unit"})
    assert r.json()["data"]["status"] == "declined"
    assert r.json()["data"]["decline_reason"] == "Not certified for this unit"
    r = await owner.post(f"/api/v1/jobs/{job_id}/assign", json={"technician_id": other.user_id})
    job = r.json()["data"]
    assert job["status"] == "assigned" and job["assigned_to"] == other.user_id
    assert job["decline_reason"] is None


async def test_only_the_assignee_or_a_dispatcher_works_the_job(h: Harness) -> None:
    owner, tech, job_id = await _setup(h)
    other_tech = await h.member(owner, "technician")
    await owner.post(f"/api/v1/jobs/{job_id}/assign", json={"technician_id": tech.user_id})
    r = await other_tech.post(f"/api/v1/jobs/{job_id}/accept", json={})
    assert r.status_code == 403
    # A dispatcher may act for the technician.
    operator = await h.member(owner, "operator")
    r = await operator.post(f"/api/v1/jobs/{job_id}/accept", json={})
    assert r.status_code == 200 and r.json()["data"]["status"] == "accepted"
    # Technicians cannot assign or cancel (permission table: jobs.manage).
    assert (await tech.post(f"/api/v1/jobs/{job_id}/cancel", json={})).status_code == 403


async def test_assign_requires_a_member_who_works_jobs(h: Harness) -> None:
    owner, tech, job_id = await _setup(h)
    viewer = await h.member(owner, "viewer")
    stranger = await h.signup(tenant_name="Elsewhere")
    for candidate in (viewer.user_id, stranger.user_id):
        r = await owner.post(f"/api/v1/jobs/{job_id}/assign", json={"technician_id": candidate})
        assert r.status_code == 422
        assert r.json()["details"][0]["field"] == "technician_id"


async def test_status_is_not_patchable(h: Harness) -> None:
    owner, tech, job_id = await _setup(h)
    r = await owner.patch(f"/api/v1/jobs/{job_id}", json={"status": "completed"})
    assert r.status_code == 422
    assert r.json()["details"] == [{"field": "status", "message": "unknown field"}]
    r = await owner.patch(f"/api/v1/jobs/{job_id}", json={"title": "Still no cooling", "scheduled_date": "2030-01-02T08:00:00+01:00"})
    assert r.status_code == 200
    assert r.json()["data"]["scheduled_date"] == "2030-01-02T07:00:00Z"


async def test_removing_a_member_returns_their_open_jobs_to_dispatch(h: Harness) -> None:
    owner, tech, job_id = await _setup(h)
    await owner.post(f"/api/v1/jobs/{job_id}/assign", json={"technician_id": tech.user_id})
    r = await owner.delete(f"/api/v1/users/{tech.user_id}")
    assert r.status_code == 204
    job = (await owner.get(f"/api/v1/jobs/{job_id}")).json()["data"]
    assert job["status"] == "unassigned" and job["assigned_to"] is None
    # ...and their session ended with the membership.
    assert (await tech.get("/api/v1/me")).status_code == 401
