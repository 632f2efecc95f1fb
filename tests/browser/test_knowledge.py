"""The knowledge base in the console: filtered search with citations, the cited
page, uploading a manual (progress, outcome, then searchable), deleting it,
and refusals explained in words."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 15_000

# Every aria-valuenow the upload bar shows, in order (recorded in the page).
OBSERVE_PROGRESS = """() => {
  window.__progress = [];
  const bar = document.querySelector('[role=progressbar][aria-label="Upload progress"]');
  new MutationObserver(() => {
    if (!bar.hidden) window.__progress.push(Number(bar.getAttribute('aria-valuenow')));
  }).observe(bar, { attributes: true });
}"""


def test_search_with_a_manufacturer_filter_returns_cited_passages_that_open_their_page(
    demo_server: Any, new_context: Callable[..., Any], login: Callable[..., Any]
) -> None:
    context = new_context()
    page = context.new_page()
    login(page, "technician")
    page.goto("/#/knowledge")
    search = page.get_by_role("search", name="Search the manuals")
    search.get_by_label("Question or keywords").fill("flash code high pressure switch lockout")
    search.get_by_label("Manufacturer").fill("Trane")
    search.get_by_role("button", name="Search").click()
    results = page.locator("ol.results > li.result")
    results.first.wait_for()

    with demo_server.http("technician") as api:
        expected = api.get("/api/v1/knowledge/search", params={
            "q": "flash code high pressure switch lockout", "manufacturer": "Trane", "k": 5,
        }).json()["data"]
    assert expected and all(hit["manufacturer"] == "Trane" for hit in expected)
    assert results.count() == len(expected)
    for i, hit in enumerate(expected):
        row = results.nth(i)
        link = row.locator("a.citation")
        assert link.text_content() == f"{hit['citation']['source']} — page {hit['citation']['page']}"
        assert link.get_attribute("href") == f"#/knowledge?doc={hit['citation']['document_id']}&page={hit['citation']['page']}"
        assert "Trane" in (row.locator(".result-meta").text_content() or "")
    # The query's words are highlighted in the snippets.
    marks = {m.lower() for m in page.locator("ol.results mark").all_text_contents()}
    assert marks and all(any(m.startswith(t) for t in ("flash", "code", "high", "pressure", "switch", "lockout")) for m in marks), marks

    # The citation opens the cited page in a dialog; its address opens the same page on its own.
    first = expected[0]["citation"]
    results.first.locator("a.citation").click()
    dialog = page.locator("dialog.manual")
    page.wait_for_function("() => /page \\d+ of \\d+/.test(document.querySelector('dialog.manual h2')?.textContent || '')")
    assert f"page {first['page']} of" in (dialog.locator("h2").text_content() or "")
    # The cited passage is on the page shown (a run of its words, markup aside).
    lines = [ln for ln in expected[0]["text"].splitlines() if ln.strip() and not ln.lstrip().startswith(("|", "#", "-", "*"))]
    words = max(lines, key=len).replace("**", "").replace("`", "").split()[:5]
    body = " ".join((dialog.locator(".manual-page").text_content() or "").split())
    assert " ".join(words) in body, (words, body[:300])
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    page.goto(f"/#/knowledge?doc={first['document_id']}&page={first['page']}")
    page.wait_for_function("() => /page \\d+ of \\d+/.test(document.querySelector('main h2')?.textContent || '')")
    assert f"page {first['page']} of" in (page.locator("main h2").first.text_content() or "")
    step, button = (-1, "← Previous page") if first["page"] > 1 else (1, "Next page →")
    page.get_by_role("button", name=button).click()
    page.wait_for_function("(n) => (document.querySelector('main h2')?.textContent || '').includes(`page ${n} of`)", arg=first["page"] + step)

    # An empty search is refused in words, without a request.
    page.goto("/#/knowledge")
    page.get_by_role("search", name="Search the manuals").get_by_role("button", name="Search").click()
    alert = page.get_by_role("search", name="Search the manuals").get_by_role("alert")
    alert.wait_for()
    assert alert.text_content() == "Type a question or some keywords to search for."
    assert context.errors == []


def test_uploading_a_manual_shows_progress_and_outcome_then_it_is_searchable_and_deletable(
    demo_server: Any, new_context: Callable[..., Any], login: Callable[..., Any], screenshot: Callable[[Any, str], Any]
) -> None:
    tag = uuid.uuid4().hex[:8]
    model = f"ZX{tag[:4].upper()}"
    source = f"Zephyr {model} Heat Pump Service Manual {tag}"
    pages = [f"# Defrost board {i}\n\nOn the Zephyr {model} the defrost board blinks code {i} when the "
             f"outdoor coil sensor reads open. Check the quixotic harness {tag} and the sensor resistance.\n\n"
             + ("Filler text about routine maintenance of the cabinet and panels. " * 400) for i in range(1, 13)]
    manual = "\n".join(pages).encode()
    assert len(manual) > 300_000  # big enough for the upload to report progress along the way

    context = new_context()
    page = context.new_page()
    login(page, "owner")
    page.goto("/#/knowledge")
    form = page.get_by_role("region", name="Upload a manual")
    form.get_by_label("Manual", exact=True).set_input_files({"name": f"zephyr-{tag}.md", "mimeType": "text/markdown", "buffer": manual})
    form.get_by_label("Name cited (optional)").fill(source)
    form.get_by_label("Manufacturer").fill("Zephyr")
    form.get_by_label("Model").fill(model)
    page.evaluate(OBSERVE_PROGRESS)
    form.get_by_role("button", name="Upload and index").click()
    outcome = form.locator("[data-outcome]")
    outcome.wait_for(timeout=60_000)
    assert outcome.get_attribute("data-outcome") == "created"
    assert (outcome.text_content() or "").startswith(f"Added: {source} — 12 pages,")
    progress = page.evaluate("() => window.__progress")
    assert progress and progress[-1] == 100 and progress == sorted(progress), progress
    screenshot(page, "knowledge-upload")

    # In the list, and searchable at once.
    row = page.locator("tbody tr", has_text=source)
    row.wait_for()
    search = page.get_by_role("search", name="Search the manuals")
    search.get_by_label("Question or keywords").fill(f"quixotic harness {tag} defrost board blinks code 7")
    search.get_by_label("Manufacturer").fill("Zephyr")
    search.get_by_role("button", name="Search").click()
    first = page.locator("ol.results > li.result").first
    first.wait_for()
    assert source in (first.locator("a.citation").text_content() or "")
    assert "your organisation" in (first.locator(".result-meta").text_content() or "")

    # The same bytes again change nothing, and say so.
    form.get_by_label("Manual", exact=True).set_input_files({"name": f"zephyr-{tag}.md", "mimeType": "text/markdown", "buffer": manual})
    form.get_by_role("button", name="Upload and index").click()
    page.wait_for_function("() => document.querySelector('[data-outcome]')?.dataset.outcome === 'unchanged'", timeout=60_000)

    # Delete it (owners may), after a confirmation.
    row.get_by_role("button", name=f"Delete {source}").click()
    row.get_by_role("button", name=f"Delete {source}").click()  # the confirm button has the same name
    page.locator("tbody tr", has_text=source).wait_for(state="detached")
    with demo_server.http("owner") as api:
        left = api.get("/api/v1/knowledge/documents", params={"search": tag}).json()["data"]
    assert left == []
    assert context.errors == []


def test_a_refused_upload_is_explained_and_viewers_cannot_upload_or_delete(
    new_context: Callable[..., Any], login: Callable[..., Any]
) -> None:
    context = new_context()
    page = context.new_page()
    login(page, "owner")
    page.goto("/#/knowledge")
    form = page.get_by_role("region", name="Upload a manual")
    junk = bytes(range(256)) * 64
    form.get_by_label("Manual", exact=True).set_input_files({"name": "junk.txt", "mimeType": "text/plain", "buffer": junk})
    form.get_by_role("button", name="Upload and index").click()
    alert = form.get_by_role("alert")
    alert.wait_for(timeout=30_000)
    text = alert.text_content() or ""
    assert text.startswith("junk.txt was not added: ") and ("not UTF-8" in text or "binary" in text), text
    assert [e for e in context.errors if "Failed to load resource" not in e] == []

    viewer = new_context().new_page()
    login(viewer, "viewer")
    viewer.goto("/#/knowledge")
    viewer.locator("tbody tr").first.wait_for()
    assert viewer.get_by_role("region", name="Upload a manual").count() == 0
    assert viewer.get_by_role("button", name="Delete").count() == 0
