"""The dashboard in a browser: printers live over the dashboard socket, print jobs, roles, errors.

The demo server's hub bridges three simulated printers; bay 1 keeps printing
by itself (the demo's rotation), the others are free for tests to start jobs on.
Every wait is bounded; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PRINTING_TIMEOUT_MS = 90_000  # a queued job: download, upload over OPC UA, heat (6 s), print
MOVE_TIMEOUT_MS = 20_000  # progress is reported about once a second


def _open_dashboard(page: Any, login: Callable[..., Any], role: str) -> None:
    login(page, role)
    page.wait_for_url("**/#/dashboard")
    expect(page.get_by_test_id("connection-status")).to_have_text("Live", timeout=20_000)
    # The demo's three printers (other tests may add one for a while).
    page.wait_for_function("() => document.querySelectorAll('[data-printer-id]').length >= 3", timeout=20_000)


def _wait_for_printer(page: Any, status: str, *, timeout_ms: int, prefer_last: bool = False) -> str:
    """The id of a printer card showing ``status`` (the first, or the last in name order)."""
    handle = page.wait_for_function(
        """([status, last]) => {
            const cards = [...document.querySelectorAll('[data-printer-id]')]
                .filter((c) => c.dataset.status === status);
            if (!cards.length) return null;
            return (last ? cards[cards.length - 1] : cards[0]).dataset.printerId;
        }""",
        arg=[status, prefer_last],
        timeout=timeout_ms,
    )
    return str(handle.json_value())


def _progress(page: Any, printer_id: str) -> int:
    bar = page.locator(f'[data-printer-id="{printer_id}"]').get_by_role("progressbar")
    return int(bar.get_attribute("aria-valuenow"))


def _wait_for_progress_change(page: Any, printer_id: str, first: int, timeout_ms: int = MOVE_TIMEOUT_MS) -> int:
    page.wait_for_function(
        """([id, first]) => {
            const bar = document.querySelector(`[data-printer-id="${id}"] [role=progressbar]`);
            return bar !== null && Number(bar.getAttribute('aria-valuenow')) !== first;
        }""",
        arg=[printer_id, first],
        timeout=timeout_ms,
    )
    return _progress(page, printer_id)


def _page_errors(context: Any) -> list[str]:
    return [e for e in context.errors if e.startswith("pageerror")]


def test_the_dashboard_shows_a_printers_progress_changing_live(
    new_context: Callable[..., Any], login: Callable[..., Any], screenshot: Callable[[Any, str], Any]
) -> None:
    context = new_context(width=1280, height=800)
    page = context.new_page()
    _open_dashboard(page, login, "owner")

    printer_id = _wait_for_printer(page, "printing", timeout_ms=PRINTING_TIMEOUT_MS)
    card = page.locator(f'[data-printer-id="{printer_id}"]')
    expect(card.get_by_test_id("printer-status")).to_have_text("Printing")
    expect(card.get_by_test_id("nozzle-temp")).to_have_text(re.compile(r"^\d+ °C$"))
    first = _progress(page, printer_id)
    second = _wait_for_progress_change(page, printer_id, first)
    assert second != first
    # The bar is named after its printer, for people who cannot see it.
    name = card.get_by_role("heading").text_content()
    assert card.get_by_role("progressbar").get_attribute("aria-label") == f"Print progress of {name}"

    # The hub and the job list come with the snapshot and REST.
    expect(page.get_by_test_id("hub-list").locator("li")).not_to_have_count(0)
    expect(page.get_by_test_id("hub-list")).to_contain_text("Online")
    expect(page.locator("[data-job-id]").first).to_be_visible()

    # The chart of the selected printer draws temperature and progress lines.
    expect(page.locator(".chart-line").first).to_be_attached(timeout=15_000)
    chart_label = page.get_by_test_id("telemetry").get_by_role("img").first.get_attribute("aria-label")
    assert chart_label and chart_label.startswith("Temperatures: latest Nozzle")

    screenshot(page, "dashboard")
    assert _page_errors(context) == []


def test_the_dashboard_reconnects_and_keeps_updating(page: Any, login: Callable[..., Any]) -> None:
    _open_dashboard(page, login, "technician")
    printer_id = _wait_for_printer(page, "printing", timeout_ms=PRINTING_TIMEOUT_MS)
    status = page.get_by_test_id("connection-status")
    # Lose the connection as a network failure would.
    page.evaluate("() => { for (const s of window.ensembleConsole.live) s.drop(); }")
    expect(status).not_to_have_text("Live", timeout=5_000)
    expect(status).to_have_text("Live", timeout=30_000)
    first = _progress(page, printer_id)
    _wait_for_progress_change(page, printer_id, first)


def test_the_dashboard_works_at_phone_width(
    new_context: Callable[..., Any], login: Callable[..., Any], screenshot: Callable[[Any, str], Any]
) -> None:
    context = new_context(width=390, height=844)
    page = context.new_page()
    _open_dashboard(page, login, "owner")
    _wait_for_printer(page, "printing", timeout_ms=PRINTING_TIMEOUT_MS)
    # Nothing wider than the screen: no sideways scrolling in the field.
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    screenshot(page, "dashboard-phone")
    assert _page_errors(context) == []


def test_starting_a_print_from_the_dashboard_makes_the_simulator_print(
    page: Any, login: Callable[..., Any]
) -> None:
    _open_dashboard(page, login, "owner")
    # The last idle printer in name order: bay 1 starts demo prints by itself.
    printer_id = _wait_for_printer(page, "idle", timeout_ms=PRINTING_TIMEOUT_MS, prefer_last=True)
    card = page.locator(f'[data-printer-id="{printer_id}"]')
    name = card.get_by_role("heading").text_content()

    form = page.get_by_role("region", name="Start a print")
    form.get_by_label("Printer", exact=True).select_option(printer_id)
    file_select = form.get_by_label("Print file", exact=True)
    labels = file_select.locator("option").all_text_contents()
    cube = next(label for label in labels if label.startswith("calibration-cube.gcode"))
    file_select.select_option(label=cube)
    form.get_by_role("button", name="Start print").click()
    expect(page.locator("#toasts")).to_contain_text(f"Print queued on {name}")

    # The simulator prints: the card goes to printing and its progress moves.
    expect(card).to_have_attribute("data-status", "printing", timeout=PRINTING_TIMEOUT_MS)
    first = _progress(page, printer_id)
    _wait_for_progress_change(page, printer_id, first)

    # The job shows in the list, and the job's own Cancel button stops it (freeing the printer).
    cancel = page.get_by_role("button", name=f"Cancel calibration-cube.gcode on {name}")
    expect(cancel).to_have_count(1, timeout=20_000)
    job_id = page.locator("[data-job-id]").filter(has=cancel).get_attribute("data-job-id")
    job = page.locator(f'[data-job-id="{job_id}"]')
    expect(job.get_by_test_id("job-status")).to_have_text("Printing", timeout=20_000)
    cancel.click()
    expect(job.get_by_test_id("job-status")).to_have_text("Cancelled", timeout=30_000)
    expect(card).to_have_attribute("data-status", "idle", timeout=30_000)


def test_a_viewer_sees_no_job_controls(page: Any, login: Callable[..., Any]) -> None:
    _open_dashboard(page, login, "viewer")
    expect(page.locator("[data-job-id]").first).to_be_visible()
    readonly = page.get_by_test_id("start-print-readonly")
    expect(readonly).to_contain_text("can watch printers and jobs, but not start or control prints")
    assert page.get_by_role("button", name="Start print").count() == 0
    assert page.get_by_label("Print file", exact=True).count() == 0
    for action in ("Pause", "Resume", "Cancel"):
        assert page.get_by_role("button", name=action).count() == 0
    # Watching still works: the chart and the cards are there.
    expect(page.get_by_test_id("telemetry")).to_be_visible()


def test_a_refused_print_is_explained_in_words(page: Any, login: Callable[..., Any], demo_server: Any) -> None:
    # A printer that is not behind a hub cannot print: the server answers 409.
    http = demo_server.http("owner")
    try:
        r = http.post("/api/v1/printers",
                      json={"name": "Bench spare (no hub)", "model": "Spare", "connection_type": "other"})
        assert r.status_code == 201, r.text
        spare = r.json()["data"]["id"]
    finally:
        http.close()
    try:
        login(page, "owner")
        expect(page.get_by_test_id("connection-status")).to_have_text("Live", timeout=20_000)
        form = page.get_by_role("region", name="Start a print")
        printer = form.get_by_label("Printer", exact=True)
        expect(printer.locator(f'option[value="{spare}"]')).to_be_attached()
        printer.select_option(spare)
        file_select = form.get_by_label("Print file", exact=True)
        expect(file_select.locator("option")).not_to_have_count(1)
        file_select.select_option(index=1)
        form.get_by_role("button", name="Start print").click()
        error = form.get_by_role("alert")
        expect(error).to_have_text("Could not start the print: the printer is not connected through a hub")

        # Asking without a file is explained before anything is sent.
        file_select.select_option(index=0)
        form.get_by_role("button", name="Start print").click()
        expect(error).to_have_text("Choose a print file first (or upload one).")
    finally:
        http = demo_server.http("owner")
        try:
            assert http.delete(f"/api/v1/printers/{spare}").status_code == 204
        finally:
            http.close()


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('main input, main select, main textarea, main button')]
    .filter((el) => el.getClientRects().length > 0)
    .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                      || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.outerHTML.slice(0, 160))"""


@pytest.mark.parametrize("where", ["#/dashboard", "#/admin"])
def test_controls_are_labelled_and_reachable_by_keyboard_with_a_visible_focus(
    page: Any, login: Callable[..., Any], where: str
) -> None:
    login(page, "owner")
    page.goto(f"/{where}")
    page.locator("main button").first.wait_for()
    if where == "#/dashboard":
        expect(page.get_by_test_id("connection-status")).to_have_text("Live", timeout=20_000)
    assert page.evaluate(UNLABELLED_CONTROLS) == []

    # Tab through the page (bounded) until a control inside <main> has the focus; its outline shows.
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.closest('main') !== null"):
            break
    else:
        raise AssertionError("Tab never reached the page's controls")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
