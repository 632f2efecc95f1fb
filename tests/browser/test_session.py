"""The live diagnostic session in the console: two technicians, presence, the AI's
streamed and cited answer, recovery after a dropped socket, errors in words.

Each test drives two browser contexts (two people) against the demo server.
The server's assistant is the offline answerer (no API key): it quotes the
manuals with citations and streams the quote a few words at a time.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ensemble.knowledge import extract_document

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 15_000
AI_WAIT_MS = 45_000
DROP_ALL = "() => [...window.ensembleConsole.live].forEach((s) => s.drop())"

# Keys and texts of the messages a page shows, in order (no pending sends, no system lines).
MESSAGES_JS = """() => [...document.querySelectorAll('ol.messages > li[data-id]')].map((li) => ({
  id: li.dataset.id, offset: Number(li.dataset.offset), kind: li.dataset.kind,
  text: li.querySelector('.msg-body') ? li.querySelector('.msg-body').textContent : ''}))"""

# Records every WebSocket URL the page opens (injected before the page's own
# scripts; init scripts are not subject to the page's CSP).
RECORD_SOCKETS = """(() => {
  const Native = window.WebSocket;
  window.__socketUrls = [];
  window.WebSocket = function (url, protocols) { window.__socketUrls.push(String(url)); return new Native(url, protocols); };
  window.WebSocket.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) window.WebSocket[k] = Native[k];
})();"""

# Records the text length of the answer bubble each time the DOM changes while
# it streams: evidence of an answer growing in place, delta by delta.
OBSERVE_STREAM = """() => {
  window.__streamLengths = [];
  const list = document.querySelector('ol.messages');
  const observer = new MutationObserver(() => {
    const bubble = list.querySelector('li.streaming .msg-body');
    if (bubble) window.__streamLengths.push(bubble.textContent.length);
  });
  observer.observe(list, { childList: true, subtree: true, characterData: true });
  window.__streamObserver = observer;
}"""


def _png() -> bytes:
    """A 2x2 PNG (a real image the browser decodes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + b"\x40\x90\xe0" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class Person:
    user: dict[str, str]
    user_id: str
    name: str
    token: str


def _sign_in(demo_server: Any, user: dict[str, str]) -> Person:
    with httpx.Client(base_url=demo_server.url, timeout=30) as client:
        r = client.post("/api/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        r.raise_for_status()
        token = r.json()["data"]["access_token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["data"]
    return Person(user=user, user_id=str(me["user"]["id"]), name=me["user"]["name"], token=token)


def _rest(demo_server: Any, person: Person) -> httpx.Client:
    return httpx.Client(base_url=demo_server.url, timeout=30, headers={"Authorization": f"Bearer {person.token}"})


def _client_with_carrier_unit(demo_server: Any, owner: Person, label: str) -> tuple[str, str]:
    """A client with a Carrier 24ACC6 on file: the assistant then reads the Carrier manual first."""
    with _rest(demo_server, owner) as api:
        client = api.post("/api/v1/clients", json={"name": f"{label} {uuid.uuid4().hex[:6]}"})
        client.raise_for_status()
        client_id = client.json()["data"]["id"]
        unit = api.post("/api/v1/equipment", json={
            "name": "Rooftop condenser", "client_id": client_id, "manufacturer": "Carrier",
            "model_number": "24ACC6", "system_type": "split_system_ac",
        })
        unit.raise_for_status()
        return client_id, unit.json()["data"]["id"]


def _session_for_two(demo_server: Any, first: Person, second: Person, title: str) -> str:
    """A session started by `first` (REST) with `second` invited; returns its id."""
    owner = _sign_in(demo_server, demo_server.users["owner"])
    client_id, equipment_id = _client_with_carrier_unit(demo_server, owner, title)
    with _rest(demo_server, first) as api:
        created = api.post("/api/v1/diagnostic/sessions", json={
            "client_id": client_id, "equipment_id": equipment_id, "mode": "guided", "title": title,
        })
        created.raise_for_status()
        session_id = created.json()["data"]["id"]
        api.post(f"/api/v1/diagnostic/sessions/{session_id}/invite", json={"technician_id": second.user_id}).raise_for_status()
    return session_id


def _history(demo_server: Any, person: Person, session_id: str) -> list[dict[str, Any]]:
    with _rest(demo_server, person) as api:
        r = api.get(f"/api/v1/diagnostic/sessions/{session_id}/messages", params={"limit": 200})
        r.raise_for_status()
        return r.json()["data"]


def _open_session(page: Any, session_id: str) -> None:
    page.goto(f"/#/sessions/{session_id}")
    page.locator(".live-status[data-status='live']").wait_for(timeout=WAIT_MS)


def _join(new_context: Callable[..., Any], login: Callable[..., Any], session_id: str, technician: int,
          *, init_script: str | None = None) -> tuple[Any, Any]:
    """A technician's own browser context, logged in, on the live session: (context, page)."""
    context = new_context()
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()
    login(page, "technician", technician=technician)
    _open_session(page, session_id)
    return context, page


def _send(page: Any, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def _wait_message(page: Any, text: str, timeout: int = WAIT_MS) -> None:
    page.locator("ol.messages > li[data-id] .msg-body", has_text=text).first.wait_for(timeout=timeout)


def _presence(page: Any, user_id: str) -> str:
    return page.locator(f"li[data-participant-id='{user_id}'] .presence-label").text_content() or ""


def _wait_presence(page: Any, user_id: str, word: str) -> None:
    page.wait_for_function(
        """([id, word]) => { const el = document.querySelector(`li[data-participant-id='${id}'] .presence-label`);
             return el && el.textContent.startsWith(word); }""",
        arg=[user_id, word], timeout=WAIT_MS,
    )


@pytest.fixture
def technicians(demo_server: Any) -> tuple[Person, Person]:
    assert len(demo_server.technicians) >= 2, "the demo needs two technicians"
    return _sign_in(demo_server, demo_server.technicians[0]), _sign_in(demo_server, demo_server.technicians[1])


def test_two_technicians_start_a_session_chat_and_see_presence_and_typing(
    demo_server: Any, new_context: Callable[..., Any], login: Callable[..., Any], technicians: tuple[Person, Person]
) -> None:
    sam, priya = technicians
    owner = _sign_in(demo_server, demo_server.users["owner"])
    client_id, _ = _client_with_carrier_unit(demo_server, owner, "Chat test client")
    title = f"No cooling {uuid.uuid4().hex[:6]}"

    ctx_a = new_context()
    a = ctx_a.new_page()
    login(a, "technician", technician=0)
    a.goto("/#/sessions")
    start = a.get_by_role("region", name="Start a session")
    client_select = start.get_by_label("Client", exact=True)
    a.wait_for_function(
        "(id) => [...document.querySelectorAll('select[name=client_id] option')].some((o) => o.value === id)", arg=client_id
    )
    client_select.select_option(client_id)
    a.wait_for_function("() => document.querySelectorAll('select[name=equipment_id] option').length > 1")
    start.get_by_label("Equipment").select_option(index=1)
    start.get_by_label("Title (optional)").fill(title)
    start.get_by_role("button", name="Start session").click()
    a.wait_for_url(re.compile(r".*#/sessions/[0-9a-f-]{36}$"))
    session_id = a.url.rsplit("/", 1)[-1]
    a.locator(".live-status[data-status='live']").wait_for()
    assert a.get_by_role("heading", level=1).text_content() == title
    _wait_presence(a, sam.user_id, "online")

    # Invite the second technician from the session's head.
    a.get_by_role("button", name="Invite").click()
    a.wait_for_function(f"() => [...document.querySelectorAll('select[name=technician] option')].some((o) => o.value === '{priya.user_id}')")
    a.get_by_label("Technician", exact=True).select_option(priya.user_id)
    a.get_by_role("button", name="Invite", exact=True).last.click()
    a.locator(f"li[data-participant-id='{priya.user_id}']").wait_for()
    assert _presence(a, priya.user_id).startswith("offline")

    # The second technician finds it in the list and opens it.
    ctx_b = new_context()
    b = ctx_b.new_page()
    login(b, "technician", technician=1)
    b.goto("/#/sessions")
    b.get_by_role("link", name=title).click()
    b.wait_for_url(f"**/#/sessions/{session_id}")
    b.locator(".live-status[data-status='live']").wait_for()
    _wait_presence(a, priya.user_id, "online")
    _wait_presence(b, sam.user_id, "online")

    _send(a, "Compressor hums, outdoor fan runs")
    _wait_message(b, "Compressor hums, outdoor fan runs")
    # Typing shows on the other page, then the message.
    b.get_by_label("Message", exact=True).type("Suction line is iced", delay=20)
    a.wait_for_function("() => document.querySelector('.typing-line').textContent.includes('typing')", timeout=WAIT_MS)
    assert priya.name in (a.locator(".typing-line").text_content() or "")
    b.get_by_label("Message", exact=True).press("Enter")
    _wait_message(a, "Suction line is iced")
    a.wait_for_function("() => document.querySelector('.typing-line').textContent === ''", timeout=WAIT_MS)

    # A reading, on both pages, as a reading.
    a.get_by_text("Add a reading").click()
    a.get_by_label("Reading", exact=True).select_option("suction_pressure")
    a.get_by_label("Value", exact=True).fill("52")
    a.get_by_role("button", name="Add reading").click()
    b.locator("li[data-kind='reading'] .reading-value", has_text="52 psi").wait_for()

    # A photo: uploaded with progress, then a thumbnail on the other page.
    a.get_by_text("Add a photo").click()
    a.get_by_label("Photo", exact=True).set_input_files({"name": "coil.png", "mimeType": "image/png", "buffer": _png()})
    a.get_by_label("Caption (optional)").fill("Iced coil")
    a.get_by_role("button", name="Upload photo").click()
    thumb = b.locator("li[data-kind='attachment'] img[alt='Photo: Iced coil']")
    thumb.wait_for()
    b.wait_for_function("() => document.querySelector(\"li[data-kind='attachment'] img\").naturalWidth > 0")
    assert a.get_by_role("progressbar", name="Photo upload").get_attribute("aria-valuenow") == "100"

    # Same ordered list on both pages and in the REST history.
    expected = [(m["id"], m["offset"]) for m in _history(demo_server, sam, session_id)]
    assert len(expected) == 4
    for page in (a, b):
        page.wait_for_function(f"() => document.querySelectorAll('ol.messages > li[data-id]').length === {len(expected)}")
        assert [(m["id"], m["offset"]) for m in page.evaluate(MESSAGES_JS)] == expected

    # Leaving shows as offline on the other page once the page goes away.
    ctx_b.close()
    _wait_presence(a, priya.user_id, "offline")
    assert ctx_a.errors == []


def test_ai_answer_streams_into_one_bubble_with_citations_that_open_the_manual_page(
    demo_server: Any, new_context: Callable[..., Any], login: Callable[..., Any],
    technicians: tuple[Person, Person], screenshot: Callable[[Any, str], Any],
) -> None:
    sam, priya = technicians
    session_id = _session_for_two(demo_server, sam, priya, "Low suction, iced coil")
    ctx_a, a = _join(new_context, login, session_id, 0)
    ctx_b, b = _join(new_context, login, session_id, 1)

    _send(b, "Suction is 52 psi at 95°F outdoor and the indoor coil is iced")
    _wait_message(a, "Suction is 52 psi")
    for page in (a, b):
        page.evaluate(OBSERVE_STREAM)
    question = "What should the suction pressure be on the 24ACC6, and what causes low suction with an iced coil?"
    a.get_by_label("Message", exact=True).fill(question)
    a.get_by_role("button", name="Ask AI").click()

    for page in (a, b):
        page.locator("ol.messages > li[data-kind='ai']").wait_for(timeout=AI_WAIT_MS)
    history = _history(demo_server, sam, session_id)
    answer = history[-1]
    assert answer["kind"] == "ai" and answer["citations"]
    for page in (a, b):
        lengths = page.evaluate("() => window.__streamLengths")
        partial = sorted({n for n in lengths if 0 < n < len(answer["text"])})
        # The bubble grew in place: several different partial lengths before the final message replaced it.
        assert len(partial) >= 2, f"no streaming seen: {lengths[:20]}"
        growing = [n for n in lengths if n > 0]
        assert all(x <= y for x, y in zip(growing, growing[1:])), "the bubble only grows"
        assert page.locator("li.streaming").count() == 0
        bubble = page.locator("ol.messages > li[data-kind='ai']")
        assert bubble.count() == 1
        assert bubble.locator(".msg-body").text_content() == answer["text"]
        assert page.locator("li.msg-ai .citations a.citation").count() == len(answer["citations"])

    # The first citation opens its manual at the cited page.
    cite = answer["citations"][0]
    link = a.locator("li.msg-ai .citations a.citation").first
    assert link.get_attribute("data-page") == str(cite["page"])
    assert link.get_attribute("href") == f"#/knowledge?doc={cite['document_id']}&page={cite['page']}"
    link.click()
    dialog = a.locator("dialog.manual")
    dialog.wait_for()
    heading = dialog.get_by_role("heading", level=2)
    a.wait_for_function("() => /page \\d+ of \\d+/.test(document.querySelector('dialog.manual h2').textContent)", timeout=WAIT_MS)
    assert f"page {cite['page']} of" in (heading.text_content() or "")
    assert cite["source"] in (heading.text_content() or "")
    # The page shown is the page the server indexed: compare with its own extraction.
    with _rest(demo_server, sam) as api:
        doc = api.get(f"/api/v1/knowledge/documents/{cite['document_id']}").json()["data"]
        content = api.get(f"/api/v1/knowledge/documents/{cite['document_id']}/content").content
    extracted = extract_document(content, filename=doc["filename"], media_type=doc["media_type"])
    page_text = extracted.pages[cite["page"] - 1].text
    first_heading = next(line.lstrip("#").strip() for line in page_text.splitlines() if line.startswith("#"))
    assert dialog.get_by_role("heading", name=first_heading).first.is_visible()
    a.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert a.evaluate("() => document.activeElement.classList.contains('citation')")  # focus came back to the link

    # Screenshots with the cited answer in view.
    a.evaluate("""() => { document.activeElement.blur(); window.scrollTo(0, 0);
        const list = document.querySelector('ol.messages'); list.scrollTop = list.scrollHeight; }""")
    screenshot(a, "session")
    ctx_phone = new_context(width=390, height=844)
    phone = ctx_phone.new_page()
    login(phone, "technician", technician=1)
    _open_session(phone, session_id)
    phone.locator("ol.messages > li[data-kind='ai']").wait_for()
    phone.locator("ol.messages > li[data-kind='ai'] .citations").scroll_into_view_if_needed()
    assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), "no sideways scrolling at phone width"
    screenshot(phone, "session-phone")

    # A second question while none is pending works; the answer count goes to two.
    assert ctx_a.errors == [] and ctx_b.errors == []


def test_a_dropped_socket_recovers_with_since_without_losing_or_duplicating(
    demo_server: Any, new_context: Callable[..., Any], login: Callable[..., Any], technicians: tuple[Person, Person]
) -> None:
    sam, priya = technicians
    session_id = _session_for_two(demo_server, sam, priya, "Reconnect check")
    ctx_a, a = _join(new_context, login, session_id, 0, init_script=RECORD_SOCKETS)
    ctx_b, b = _join(new_context, login, session_id, 1)
    for i in range(3):
        _send(b, f"before drop {i}")
    _wait_message(a, "before drop 2")

    # A's network goes away: the socket drops and cannot come back yet.
    ctx_a.set_offline(True)
    a.evaluate(DROP_ALL)
    a.locator(".live-status[data-status='offline'], .live-status[data-status='connecting']").first.wait_for()
    assert "Reconnecting" in (a.locator(".live-status").text_content() or "")
    for i in range(5):
        _send(b, f"while away {i}")
    _wait_message(b, "while away 4")
    # A writes while offline: kept, and sent once the connection is back.
    _send(a, "written offline")
    a.get_by_role("status").filter(has_text="offline").first.wait_for()
    time.sleep(1.0)  # a few reconnect attempts fail meanwhile
    assert a.locator("ol.messages .msg-body", has_text="while away").count() == 0

    ctx_a.set_offline(False)
    a.locator(".live-status[data-status='live']").wait_for(timeout=30_000)
    _wait_message(a, "while away 4")
    _wait_message(b, "written offline")
    _send(b, "after reconnect")
    _wait_message(a, "after reconnect")

    expected = [(m["id"], m["offset"]) for m in _history(demo_server, sam, session_id)]
    texts = [m["text"] for m in _history(demo_server, sam, session_id)]
    assert texts.count("written offline") == 1
    assert len(expected) == 10
    for page in (a, b):
        page.wait_for_function(f"() => document.querySelectorAll('ol.messages > li[data-id]').length >= {len(expected)}")
        shown = page.evaluate(MESSAGES_JS)
        assert [(m["id"], m["offset"]) for m in shown] == expected
        assert page.locator("ol.messages > li.pending").count() == 0
    urls = a.evaluate("() => window.__socketUrls")
    assert "since=" not in urls[0]
    assert any("since=" in url for url in urls[1:]), urls  # recovered from its last offset, not from scratch
    assert ctx_b.errors == []


def test_errors_are_shown_in_words(
    demo_server: Any, new_context: Callable[..., Any], login: Callable[..., Any], technicians: tuple[Person, Person]
) -> None:
    sam, priya = technicians
    session_id = _session_for_two(demo_server, sam, priya, "Errors in words")
    ctx, page = _join(new_context, login, session_id, 0)

    page.get_by_role("button", name="Send").click()
    alert = page.locator(".composer [role=alert]")
    alert.wait_for()
    assert alert.text_content() == "Write a message before sending."

    page.get_by_label("Message", exact=True).fill("x" * 4001)
    page.get_by_role("button", name="Send").click()
    assert alert.text_content() == "A message can be at most 4000 characters; this one has 4001."

    # A refusal from the server: a photo of a type the server does not accept.
    page.get_by_text("Add a photo").click()
    page.get_by_label("Photo", exact=True).set_input_files({"name": "notes.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ" + b"\0" * 64})
    page.get_by_role("button", name="Upload photo").click()
    page.wait_for_function("() => document.querySelector('.composer [role=alert]').textContent.startsWith('The photo was not uploaded')")
    assert "not accepted" in (alert.text_content() or "")

    # Nothing was stored.
    assert _history(demo_server, sam, session_id) == []
    # An unknown session is a sentence, not a stack trace.
    page.goto(f"/#/sessions/{uuid.uuid4()}")
    page.get_by_text("There is no such session in your organisation.").wait_for()
    # The browser logs the refused requests (415, 404) itself; the page raised nothing.
    assert [e for e in ctx.errors if "Failed to load resource" not in e] == []
