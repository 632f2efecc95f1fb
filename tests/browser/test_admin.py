"""The admin page in a browser: members and roles, hub claiming, files, AI usage, access.

Hubs are provisioned the way an operator does it, with ``ensemble hub
provision`` against the demo server's database, and claimed through the page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _provision_hub(demo_server: Any, tmp_path: Path) -> dict[str, str]:
    """``ensemble hub provision --json``: a new unclaimed hub, its secret and a claim code."""
    env = {**os.environ, "ENSEMBLE_DATABASE_URL": demo_server.database_url, "ENSEMBLE_DATA_DIR": str(tmp_path),
           "ENSEMBLE_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "ensemble.cli", "hub", "provision", "--json"],
        env=env, capture_output=True, timeout=60, check=True,
    )
    provisioned: dict[str, str] = json.loads(result.stdout)
    assert provisioned["claim_code"]
    return provisioned


def _open_admin(page: Any, login: Callable[..., Any], role: str = "owner") -> None:
    login(page, role)
    page.goto("/#/admin")
    page.get_by_role("heading", name="Administration").wait_for()


def test_an_owner_claims_a_hub_with_its_code_and_sees_it_listed(
    page: Any, login: Callable[..., Any], demo_server: Any, tmp_path: Path
) -> None:
    provisioned = _provision_hub(demo_server, tmp_path)
    name = f"Shelf hub {uuid.uuid4().hex[:6]}"
    _open_admin(page, login)
    hubs = page.get_by_role("region", name="Hubs")
    hubs.get_by_label("Claim code").fill(provisioned["claim_code"])
    hubs.get_by_label("Hub name").fill(name)
    hubs.get_by_role("button", name="Claim hub").click()

    row = page.locator(f'[data-hub-id="{provisioned["hub_id"]}"]')
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("Offline")  # provisioned, never connected
    expect(page.locator("#toasts")).to_contain_text(f'Hub "{name}" is now yours.')

    # Rename it, then release it again (two presses: the first only asks).
    row.get_by_role("button", name=f"Rename {name}").click()
    renamed = f"{name} (renamed)"
    row.get_by_label(f"New name for {name}").fill(renamed)
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".hub-name")).to_have_text(renamed)
    release = row.get_by_role("button", name=f"Release {renamed}")
    release.click()
    expect(release).to_have_text("Confirm release")
    release.click()
    expect(row).to_have_count(0)


def test_a_wrong_claim_code_is_explained_in_words(page: Any, login: Callable[..., Any]) -> None:
    _open_admin(page, login)
    hubs = page.get_by_role("region", name="Hubs")
    hubs.get_by_label("Claim code").fill("ZZZZ-ZZZZ")
    hubs.get_by_label("Hub name").fill("Nowhere")
    hubs.get_by_role("button", name="Claim hub").click()
    alert = hubs.get_by_test_id("claim-error")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("That claim code is wrong or has expired.")


def test_the_last_owner_cannot_step_down_and_is_told_why(page: Any, login: Callable[..., Any], demo_users: Any) -> None:
    _open_admin(page, login)
    me = page.locator(f'tr[data-email="{demo_users["owner"]["email"]}"]')
    select = me.get_by_role("combobox")
    expect(select).to_have_value("owner")
    select.select_option("admin")
    error = page.get_by_test_id("members-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("owner")
    expect(error).to_contain_text("Make someone else an owner first.")
    expect(select).to_have_value("owner")  # the page shows what is true, not what was asked


def test_an_owner_adds_a_member_changes_the_role_and_removes_them(page: Any, login: Callable[..., Any]) -> None:
    _open_admin(page, login)
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    members = page.get_by_role("region", name="Members and roles")
    form = members.get_by_role("form", name="Add a member")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Name").fill("Nora New")
    form.get_by_label("Role").select_option("technician")
    form.get_by_label("Password").fill("correct horse battery")
    form.get_by_role("button", name="Add member").click()

    row = page.locator(f'tr[data-email="{email}"]')
    expect(row).to_contain_text("Nora New")
    row.get_by_role("combobox", name="Role of Nora New").select_option("viewer")
    expect(page.locator("#toasts")).to_contain_text("Nora New is now Viewer.")

    remove = row.get_by_role("button", name="Remove Nora New")
    remove.click()
    remove.click()
    expect(row).to_have_count(0)


def test_an_owner_adds_a_printer_to_the_demo_hub_and_removes_it(page: Any, login: Callable[..., Any]) -> None:
    _open_admin(page, login)
    printers = page.get_by_role("region", name="Printers")
    form = printers.get_by_role("form", name="Add a printer")
    name = f"Bench {uuid.uuid4().hex[:6]}"
    form.get_by_label("Printer name").fill(name)
    form.get_by_label("Model").fill("MK4 (spare)")
    form.get_by_label("Hub", exact=True).select_option(label="Print room hub (demo)")
    form.get_by_role("button", name="Add printer").click()
    row = printers.locator("tr", has_text=name)
    expect(row).to_contain_text("Print room hub (demo)")
    printer_id = row.get_attribute("data-printer-row")
    expect(page.locator("#toasts")).to_contain_text(f"{name} was added (id {printer_id}).")

    # A second printer of the same name is refused, in words.
    form.get_by_label("Printer name").fill(name)
    form.get_by_label("Model").fill("MK4 (spare)")
    form.get_by_role("button", name="Add printer").click()
    expect(form.get_by_role("alert")).to_contain_text("Could not add the printer:")

    remove = row.get_by_role("button", name=f"Remove {name}")
    remove.click()
    remove.click()
    expect(row).to_have_count(0)


def test_files_upload_with_progress_download_and_delete(page: Any, login: Callable[..., Any]) -> None:
    _open_admin(page, login)
    files = page.get_by_role("region", name="Files")
    name = f"bench-notes-{uuid.uuid4().hex[:6]}.txt"
    files.get_by_label("File", exact=True).set_input_files(
        {"name": name, "mimeType": "text/plain", "buffer": b"nozzle 0.4 mm, PLA at 215 C\n" * 2000})
    files.get_by_role("button", name="Upload").click()
    expect(files.get_by_test_id("file-upload-status")).to_contain_text(f"Uploaded {name}")
    row = files.locator("tr", has_text=name)
    expect(row).to_have_count(1)

    with page.expect_download() as download:
        row.get_by_role("button", name=f"Download {name}").click()
    assert download.value.suggested_filename == name

    delete = row.get_by_role("button", name=f"Delete {name}")
    delete.click()
    delete.click()
    expect(row).to_have_count(0)


def test_the_usage_ledger_is_shown(page: Any, login: Callable[..., Any]) -> None:
    _open_admin(page, login)
    usage = page.get_by_role("region", name="AI assistant usage")
    expect(usage.get_by_test_id("usage-totals")).to_contain_text("Requests")
    expect(usage.get_by_test_id("usage-totals")).to_contain_text("Cost")
    expect(usage.get_by_role("table")).to_be_visible()
    # A period the server refuses (to before from) is explained in words.
    usage.get_by_label("From").fill("2026-03-10")
    usage.get_by_label("To").fill("2026-03-01")
    usage.get_by_role("button", name="Show").click()
    expect(usage.get_by_test_id("usage-error")).to_contain_text("Could not load the usage: 'to' is before 'from'")


@pytest.mark.parametrize("role", ["technician", "viewer"])
def test_people_without_admin_rights_get_a_polite_no_access_page(
    page: Any, login: Callable[..., Any], role: str
) -> None:
    login(page, role)
    page.goto("/#/admin")
    notice = page.get_by_test_id("no-access")
    expect(notice).to_contain_text("you don't have access to this page")
    expect(notice).to_contain_text(f"your role is {role}")
    assert page.get_by_role("button", name="Claim hub").count() == 0
    notice.get_by_role("link", name="Back to the dashboard").click()
    page.wait_for_url("**/#/dashboard")
