"""Seeding the demo: once, idempotent, with credentials that survive restarts (and their loss)."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import pytest

from ensemble.demo import (
    HUB_NAME,
    PRINTERS,
    TENANT_NAME,
    DemoCredentials,
    credentials_path,
    load_credentials,
    save_credentials,
    seed_demo,
)
from ensemble.persistence.repos import files, hubs, print_jobs, printers, users
from tests.demo._helpers import DEMO_EMAILS, count_rows, login
from tests.server import running_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_seeding_twice_creates_nothing_new(fresh_database_url: str, tmp_path: Path) -> None:
    async with running_server(fresh_database_url, tmp_path) as srv:
        db = srv.services.db
        first = await seed_demo(srv.services, origin=srv.url)
        assert {k: v for k, v in first.created.items() if v} == {
            "tenants": 1, "users": 4, "memberships": 3, "hubs": 1, "printers": 3, "files": 5, "print_jobs": 3,
            "manuals": first.created["manuals"],
        }
        assert first.created["manuals"] >= 10
        path = credentials_path(srv.services.settings.data_dir)
        assert _mode(path) == 0o600
        stored = path.read_text()
        before = await count_rows(db)

        second = await seed_demo(srv.services, origin=srv.url)

        assert not any(second.created.values()), second.created
        assert await count_rows(db) == before
        assert path.read_text() == stored and _mode(path) == 0o600
        assert (second.tenant_id, second.hub_id, second.hub_secret) == (first.tenant_id, first.hub_id, first.hub_secret)
        assert second.users == first.users and second.printers == first.printers and second.files == first.files

        # What is there, read through the repositories the API uses.
        members = await db.run(lambda conn: users.list_members(conn, first.tenant_id, limit=50))
        assert {m["email"]: m["role"] for m in members.items} == DEMO_EMAILS
        hub_page = await db.run(lambda conn: hubs.list_hubs(conn, first.tenant_id))
        assert [(str(h["id"]), h["name"]) for h in hub_page.items] == [(first.hub_id, HUB_NAME)]
        printer_page = await db.run(lambda conn: printers.list_printers(conn, first.tenant_id))
        assert [p["name"] for p in printer_page.items] == [p.name for p in PRINTERS]
        assert {str(p["hub_id"]) for p in printer_page.items} == {first.hub_id}
        assert {p["connection_type"] for p in printer_page.items} == {"opcua"}
        file_page = await db.run(lambda conn: files.list_files(conn, first.tenant_id))
        assert file_page.total == 5
        job_page = await db.run(lambda conn: print_jobs.list_jobs(conn, first.tenant_id))
        # No hub agent runs here: the two jobs for the fleet wait, the third was cancelled before it left.
        assert sorted((j["file_name"], j["status"]) for j in job_page.items) == [
            ("cable-clip.gcode", "cancelled"), ("calibration-cube.gcode", "queued"), ("gear-housing.gcode", "queued"),
        ]
        cancelled = next(j for j in job_page.items if j["status"] == "cancelled")
        transitions = await db.run(print_jobs.transitions, first.tenant_id, cancelled["id"])
        assert [t["status"] for t in transitions] == ["queued", "cancelled"]

        # The stored passwords log in, each with the catalog's role, in the demo tenant.
        document = json.loads(stored)
        assert {u["email"]: u["role"] for u in document["users"]} == DEMO_EMAILS
        assert document["hub"] == {"id": first.hub_id, "secret": first.hub_secret}
        async with srv.client() as http:
            for user in document["users"]:
                r = await login(http, user["email"], user["password"])
                assert r.status_code == 200, r.text
                data = r.json()["data"]
                assert (data["role"], data["tenant"]["name"]) == (user["role"], TENANT_NAME)


async def test_a_lost_credentials_file_resets_the_passwords_and_replaces_the_hub(
    fresh_database_url: str, tmp_path: Path
) -> None:
    async with running_server(fresh_database_url, tmp_path) as srv:
        db = srv.services.db
        first = await seed_demo(srv.services, origin=srv.url)
        before = await count_rows(db)
        path = credentials_path(srv.services.settings.data_dir)
        path.unlink()

        second = await seed_demo(srv.services, origin=srv.url)

        created = {k: v for k, v in second.created.items() if v}
        assert created == {"passwords_reset": 4, "hubs": 1, "hubs_released": 1, "printers_moved": 3}
        assert second.tenant_id == first.tenant_id
        assert [u.user_id for u in second.users] == [u.user_id for u in first.users]
        assert all(a.password != b.password for a, b in zip(first.users, second.users))
        # The old hub's secret is gone with the file: it was released, a new one claimed, the printers moved.
        assert second.hub_id != first.hub_id
        old = await db.run(hubs.credentials, uuid.UUID(first.hub_id))
        new = await db.run(hubs.credentials, uuid.UUID(second.hub_id))
        assert old is not None and old[0] is None
        assert new is not None and new[0] == second.tenant_id
        printer_page = await db.run(lambda conn: printers.list_printers(conn, second.tenant_id))
        assert {str(p["hub_id"]) for p in printer_page.items} == {second.hub_id}
        after = await count_rows(db)
        # One more hub row (the released one stays, unclaimed); no other new thing but audit lines
        # for the reset (release, claim, printer moves) and the jobs the release failed.
        assert after["hubs"] == before["hubs"] + 1
        for table in ("tenants", "users", "memberships", "printers", "files", "print_jobs", "knowledge_documents"):
            assert after[table] == before[table], table
        assert _mode(path) == 0o600
        assert load_credentials(path) == DemoCredentials(
            passwords={u.email: u.password for u in second.users}, hub_id=second.hub_id, hub_secret=second.hub_secret
        )
        async with srv.client() as http:
            for old_user, new_user in zip(first.users, second.users):
                assert (await login(http, old_user.email, old_user.password)).status_code == 401
                assert (await login(http, new_user.email, new_user.password)).status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"version": 99, "users": []}),
        json.dumps({"version": 1, "users": [{"email": "owner@demo.ensemble.local", "password": "short"}]}),
        json.dumps({"version": 1, "users": "nobody"}),
        json.dumps({"version": 1, "users": [], "hub": {"id": 7}}),
    ],
    ids=["garbage", "other-version", "short-password", "users-not-a-list", "bad-hub"],
)
async def test_a_bad_credentials_file_is_replaced(fresh_database_url: str, tmp_path: Path, content: str) -> None:
    async with running_server(fresh_database_url, tmp_path) as srv:
        path = credentials_path(srv.services.settings.data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o644)
        assert load_credentials(path) is None

        first = await seed_demo(srv.services, origin=srv.url)

        assert first.created["users"] == 4 and first.created["tenants"] == 1
        assert _mode(path) == 0o600
        document = json.loads(path.read_text())
        assert {u["email"]: u["password"] for u in document["users"]} == {u.email: u.password for u in first.users}
        async with srv.client() as http:
            for user in first.users:
                assert (await login(http, user.email, user.password)).status_code == 200


async def test_a_password_changed_elsewhere_is_reset_to_the_file(fresh_database_url: str, tmp_path: Path) -> None:
    async with running_server(fresh_database_url, tmp_path) as srv:
        first = await seed_demo(srv.services, origin=srv.url)
        technician = first.users[1]
        from ensemble.gateway._passwords import PasswordHasher

        other = await PasswordHasher(srv.services.settings).hash("changed in the console")
        await srv.services.db.run(users.set_password_hash, technician.user_id, other)

        second = await seed_demo(srv.services, origin=srv.url)

        assert {k: v for k, v in second.created.items() if v} == {"passwords_reset": 1}
        async with srv.client() as http:
            assert (await login(http, technician.email, technician.password)).status_code == 200


def test_the_credentials_file_round_trips_and_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "demo-credentials.json"
    assert load_credentials(path) is None  # missing: not an error
    creds = DemoCredentials(passwords={"a@demo.ensemble.local": "p" * 16}, hub_id="h", hub_secret="s")
    save_credentials(path, creds, [{"email": "a@demo.ensemble.local", "password": "p" * 16, "role": "owner",
                                    "name": "A"}])
    assert _mode(path) == 0o600
    assert load_credentials(path) == creds
    path.chmod(0o644)
    save_credentials(path, creds, [{"email": "a@demo.ensemble.local", "password": "p" * 16}])
    assert _mode(path) == 0o600  # rewritten, not reused
    assert [p.name for p in path.parent.iterdir()] == ["demo-credentials.json"]  # no temporary left behind
