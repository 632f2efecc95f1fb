"""Members, hubs, printers, clients and equipment: the rules beyond plain CRUD."""

from __future__ import annotations

import uuid

from ensemble.persistence.repos import hubs as hubs_repo
from tests.gateway.conftest import PASSWORD, Harness, unique_email


async def test_members_add_change_remove(h: Harness) -> None:
    owner = await h.signup()
    admin = await h.member(owner, "admin")

    # New account with a password; then it can log in.
    email = unique_email("tech")
    r = await admin.post("/api/v1/users", json={"email": email, "role": "technician", "name": "Tess", "password": PASSWORD})
    assert r.status_code == 201, r.text
    tech = r.json()["data"]
    assert tech["role"] == "technician" and tech["created_by"] == admin.user_id
    assert (await h.login(email)).tenant_id == owner.tenant_id

    # Existing accounts are added by email, and only without a password.
    other = await h.signup(tenant_name="Other")
    r = await admin.post("/api/v1/users", json={"email": other.email, "role": "viewer", "password": "a new password"})
    assert r.status_code == 409
    r = await admin.post("/api/v1/users", json={"email": other.email, "role": "viewer"})
    assert r.status_code == 201
    r = await admin.post("/api/v1/users", json={"email": other.email, "role": "viewer"})
    assert r.status_code == 409  # already a member

    r = await admin.patch(f"/api/v1/users/{tech['id']}", json={"role": "operator"})
    assert r.status_code == 200 and r.json()["data"]["role"] == "operator"
    r = await owner.get("/api/v1/technicians")
    assert [m["id"] for m in r.json()["data"]] == [tech["id"]]
    r = await owner.get("/api/v1/users", params={"role": ["viewer", "operator"], "sort": "-email"})
    assert {m["id"] for m in r.json()["data"]} == {tech["id"], other.user_id}

    # Role changes apply at once, without a new token.
    viewer_session = await h.login(other.email, tenant_id=owner.tenant_id)
    assert (await viewer_session.post("/api/v1/clients", json={"name": "x"})).status_code == 403
    await admin.patch(f"/api/v1/users/{other.user_id}", json={"role": "operator"})
    assert (await viewer_session.post("/api/v1/clients", json={"name": "x"})).status_code == 201

    r = await admin.delete(f"/api/v1/users/{tech['id']}")
    assert r.status_code == 204
    assert (await admin.get(f"/api/v1/users/{tech['id']}")).status_code == 404

    actions = [(e["action"], e["entity"]) for e in (await owner.get("/api/v1/audit", params={"entity": "member"})).json()["data"]]
    assert ("delete", "member") in actions and ("update", "member") in actions


async def test_owners_are_protected(h: Harness) -> None:
    owner = await h.signup()
    admin = await h.member(owner, "admin")
    # Only an owner makes or unmakes owners.
    r = await admin.post("/api/v1/users", json={"email": unique_email(), "role": "owner", "name": "X", "password": PASSWORD})
    assert r.status_code == 403
    assert (await admin.patch(f"/api/v1/users/{owner.user_id}", json={"role": "viewer"})).status_code == 403
    assert (await admin.delete(f"/api/v1/users/{owner.user_id}")).status_code == 403
    # The last owner can be neither demoted nor removed, even by themselves.
    r = await owner.patch(f"/api/v1/users/{owner.user_id}", json={"role": "admin"})
    assert r.status_code == 409 and "last owner" in r.json()["message"]
    assert (await owner.delete(f"/api/v1/users/{owner.user_id}")).status_code == 409
    # With a second owner, the first may step down.
    await owner.patch(f"/api/v1/users/{admin.user_id}", json={"role": "owner"})
    r = await owner.patch(f"/api/v1/users/{owner.user_id}", json={"role": "admin"})
    assert r.status_code == 200
    assert await h.count("memberships", "tenant_id = $1::uuid AND role = 'owner'", owner.tenant_id) == 1


async def test_hub_claim_rename_release(h: Harness) -> None:
    owner = await h.signup()
    hub_id, code = await h.provision_hub()
    r = await owner.post("/api/v1/hubs/claim", json={"claim_code": code.lower().replace("-", " "), "name": "Farm hub"})
    assert r.status_code == 201, r.text
    hub = r.json()["data"]
    assert hub["id"] == hub_id and hub["name"] == "Farm hub" and hub["claimed_by"] == owner.user_id
    assert "hmac_key" not in r.text and "claim_code" not in r.text

    # The code is single-use; another tenant cannot reuse it.
    other = await h.signup()
    assert (await other.post("/api/v1/hubs/claim", json={"claim_code": code, "name": "Mine"})).status_code == 404
    # A claimed hub gets no new code.
    assert (await h.db.fetchval("SELECT claim_code_hash FROM hubs WHERE id = $1", uuid.UUID(hub_id))) is None

    r = await owner.post("/api/v1/printers", json={"name": "X1C #1", "model": "X1 Carbon", "hub_id": hub_id})
    assert r.status_code == 201
    printer = r.json()["data"]
    r = await owner.post("/api/v1/printers", json={"name": "X1C #1", "model": "X1 Carbon"})
    assert r.status_code == 409 and r.json()["details"][0]["field"] == "name"
    assert [p["id"] for p in (await owner.get("/api/v1/printers", params={"hub_id": hub_id})).json()["data"]] == [printer["id"]]

    r = await owner.patch(f"/api/v1/hubs/{hub_id}", json={"name": "Renamed"})
    assert r.json()["data"]["name"] == "Renamed"

    r = await owner.post(f"/api/v1/hubs/{hub_id}/release", json={})
    assert r.status_code == 204
    assert (await owner.get(f"/api/v1/hubs/{hub_id}")).status_code == 404
    assert (await owner.get(f"/api/v1/printers/{printer['id']}")).json()["data"]["hub_id"] is None
    # Released, it can be claimed again with a fresh code.
    fresh, _ = await h.db.run(hubs_repo.issue_claim_code, uuid.UUID(hub_id), 600)
    assert (await other.post("/api/v1/hubs/claim", json={"claim_code": fresh, "name": "Second life"})).status_code == 201


async def test_expired_claim_code_is_refused(h: Harness) -> None:
    owner = await h.signup()
    hub_id, code = await h.provision_hub()
    await h.db.execute("UPDATE hubs SET claim_code_expires_at = now() - interval '1 second' WHERE id = $1", uuid.UUID(hub_id))
    r = await owner.post("/api/v1/hubs/claim", json={"claim_code": code, "name": "Late"})
    assert r.status_code == 404
    assert await h.count("hubs", "id = $1 AND tenant_id IS NULL", uuid.UUID(hub_id)) == 1


async def test_clients_equipment_filters_sorting_pagination(h: Harness) -> None:
    owner = await h.signup()
    names = ["Delta", "Alpha", "Charlie", "Bravo", "Echo"]
    ids = {}
    for name in names:
        r = await owner.post("/api/v1/clients", json={"name": name, "status": "inactive" if name == "Echo" else "active"})
        ids[name] = r.json()["data"]["id"]
    r = await owner.get("/api/v1/clients", params={"status": "active", "sort": "name", "limit": 2})
    page = r.json()
    assert [c["name"] for c in page["data"]] == ["Alpha", "Bravo"]
    assert page["meta"] == {"total": 4, "limit": 2, "offset": 0}
    r = await owner.get("/api/v1/clients", params={"status": "active", "sort": "name", "limit": 2, "offset": 2})
    assert len(r.json()["data"]) == 2 and r.json()["meta"]["total"] == 4
    r = await owner.get("/api/v1/clients", params={"sort": "-created_at", "limit": 1})
    assert r.json()["data"][0]["name"] == "Echo"

    r = await owner.post("/api/v1/equipment", json={"name": "Furnace", "install_date": "2019-05-01"})
    equipment = r.json()["data"]
    assert equipment["client_id"] is None
    r = await owner.post(f"/api/v1/equipment/{equipment['id']}/assign-client", json={"client_id": ids["Delta"]})
    assert r.json()["data"]["client_id"] == ids["Delta"]
    r = await owner.get("/api/v1/equipment", params={"client_id": ids["Delta"]})
    assert [e["id"] for e in r.json()["data"]] == [equipment["id"]]
    # Deleting the client detaches its equipment (and deletes its jobs).
    assert (await owner.delete(f"/api/v1/clients/{ids['Delta']}")).status_code == 204
    assert (await owner.get(f"/api/v1/equipment/{equipment['id']}")).json()["data"]["client_id"] is None

    # PATCH changes only what was sent; null clears optional fields, not required ones.
    r = await owner.patch(f"/api/v1/clients/{ids['Alpha']}", json={"phone": "555"})
    assert r.json()["data"]["phone"] == "555" and r.json()["data"]["name"] == "Alpha"
    r = await owner.patch(f"/api/v1/clients/{ids['Alpha']}", json={"phone": None})
    assert r.json()["data"]["phone"] is None
    r = await owner.patch(f"/api/v1/clients/{ids['Alpha']}", json={"name": None})
    assert r.status_code == 422


async def test_audit_trail_fields_are_set_by_the_server(h: Harness) -> None:
    owner = await h.signup()
    operator = await h.member(owner, "operator")
    r = await owner.post("/api/v1/clients", json={"name": "Audited"})
    client = r.json()["data"]
    assert client["created_by"] == client["updated_by"] == owner.user_id
    r = await operator.patch(f"/api/v1/clients/{client['id']}", json={"notes": "called"})
    updated = r.json()["data"]
    assert updated["created_by"] == owner.user_id and updated["updated_by"] == operator.user_id
    assert updated["updated_at"] > client["updated_at"] and updated["created_at"] == client["created_at"]
    await operator.delete(f"/api/v1/clients/{client['id']}")
    entries = (await owner.get("/api/v1/audit", params={"entity_id": client["id"], "sort": "at"})).json()["data"]
    assert [(e["action"], e["actor_id"]) for e in entries] == [
        ("create", owner.user_id), ("update", operator.user_id), ("delete", operator.user_id)
    ]
    assert entries[1]["details"] == {"fields": ["notes"]}
    assert all(e["request_id"] for e in entries)
