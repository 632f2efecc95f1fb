"""The real assistant: Claude (faked at the HTTP layer) with retrieval, cache, limit and ledger; offline excerpts.

Direct calls to ``services.knowledge.assistant`` and, at the end, the
DiagnosticSession actor asked through ``services.actors`` as the gateway does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import pytest
import trio

from ensemble.actors import Address
from ensemble.errors import RateLimited, Unavailable
from ensemble.knowledge.assistant import AssistantChunk, AssistantRequest, EquipmentContext, HistoryMessage
from ensemble.knowledge.service import ManualFields
from ensemble.server import Services
from tests.sessions._helpers import Caller, create_command

from .conftest import E7_QUESTION, MANUAL_PDF, new_tenant, online
from .fake_anthropic import BreakStream, Fail, FakeAnthropic, Hang, Reply

ZEPHYR = EquipmentContext(name="Roof unit 3", manufacturer="Zephyr", model="ZX-90", type="split system")


def _ask(tenant: uuid.UUID, question: str = E7_QUESTION, **kw: Any) -> AssistantRequest:
    kw.setdefault("equipment", ZEPHYR)
    return AssistantRequest(tenant_id=str(tenant), session_id=kw.pop("session_id", "s-1"),
                            request_id=kw.pop("request_id", f"ai-{uuid.uuid4().hex[:6]}"), question=question,
                            asked_by="Alice", **kw)


async def _collect(services: Services, request: AssistantRequest) -> tuple[list[str], AssistantChunk]:
    assert services.knowledge.assistant is not None
    deltas: list[str] = []
    with trio.fail_after(10):
        # As the session's runner does: the generator is closed after the final chunk.
        async with aclosing(services.knowledge.assistant.answer(request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if chunk.final:
                    return deltas, chunk
                deltas.append(chunk.delta)
    raise AssertionError("no final chunk")


async def _manual(services: Services) -> tuple[uuid.UUID, dict[str, Any]]:
    tenant = await new_tenant(services.db)
    out = await services.knowledge.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant,
                                          fields=ManualFields(manufacturer="Zephyr", model="ZX-90"))
    return tenant, out.document


async def _ledger(services: Services, tenant: uuid.UUID) -> list[dict[str, Any]]:
    rows = await services.db.fetch("SELECT * FROM ai_usage WHERE tenant_id = $1 ORDER BY id", tenant)
    return [dict(r) for r in rows]


async def test_a_question_streams_claude_answer_with_citations_then_hits_the_cache(
    services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic
) -> None:
    fake.script.append(Reply(["Code E7 means the outdoor fan ", "motor is locked [1]. ", "Check the 5 uF capacitor [1]."],
                             input_tokens=1500, output_tokens=60, cache_write_tokens=1100))
    async with services_factory(kdb_url, **online(fake, ai_max_tokens=700)) as services:
        tenant, doc = await _manual(services)
        history = (HistoryMessage("user", "Bob", "The outdoor fan is not spinning.", "t1"),)
        deltas, final = await _collect(services, _ask(tenant, history=history))
        assert deltas == ["Code E7 means the outdoor fan ", "motor is locked [1]. ", "Check the 5 uF capacitor [1]."]
        assert final.text == "".join(deltas)
        assert final.citations == ({"n": 1, "source": "Zephyr ZX-90 Service Manual", "page": 2, "document_id": str(doc["id"])},)
        assert final.usage["cached"] is False and final.usage["input_tokens"] == 1500
        assert final.usage["cost_usd"] == pytest.approx((1500 * 3 + 60 * 15 + 1100 * 3.75) / 1e6)

        # What the API received: the configured model, cache-marked system blocks, the context, the conversation.
        body, headers = fake.requests[0], fake.headers[0]
        # (SDK versions send the key as x-api-key or as a bearer token)
        assert "sk-ant-test" in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
        assert headers["anthropic-version"]
        assert body["model"] == "claude-sonnet-4-6" and body["max_tokens"] == 700 and body["stream"] is True
        assert [b.get("cache_control") for b in body["system"]] == [{"type": "ephemeral"}, None, {"type": "ephemeral"}]
        assert "[1] Zephyr ZX-90 Service Manual p.2" in body["system"][2]["text"]
        assert "Code E7 means the outdoor fan motor is locked" in body["system"][2]["text"]
        assert "Model: ZX-90" in body["system"][1]["text"]
        assert body["messages"] == [{"role": "user", "content": f"[Bob] The outdoor fan is not spinning.\n\n[Alice] {E7_QUESTION}"}]

        # The same question, spelled differently, from another session: the cache answers, no API call.
        deltas2, again = await _collect(services, _ask(tenant, "  what does CODE e7 mean on the outdoor unit ", session_id="s-2"))
        assert fake.calls == 1
        assert again.text == final.text and "".join(deltas2) == final.text and again.citations == final.citations
        assert again.usage["cached"] is True and again.usage["cost_usd"] == 0
        ledger = await _ledger(services, tenant)
        assert [(r["outcome"], r["input_tokens"], r["cache_write_tokens"]) for r in ledger] == [
            ("answered", 1500, 1100), ("cache_hit", 0, 0)
        ]
        assert float(ledger[0]["cost_usd"]) == pytest.approx(final.usage["cost_usd"])
        assert await services.db.fetchval("SELECT hits FROM ai_response_cache WHERE tenant_id = $1", tenant) == 1

        # Other equipment is another question; a new manual version clears the tenant's cached answers.
        await _collect(services, _ask(tenant, equipment=EquipmentContext(manufacturer="Carrier", model="24ACC6")))
        assert fake.calls == 2
        await services.knowledge.ingest(MANUAL_PDF + b"\n% rev 2\n", filename="zx90.pdf", tenant_id=tenant)
        await _collect(services, _ask(tenant))
        assert fake.calls == 3


async def test_the_cache_is_per_tenant(services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic) -> None:
    async with services_factory(kdb_url, **online(fake)) as services:
        t1, _ = await _manual(services)
        t2, _ = await _manual(services)
        await _collect(services, _ask(t1))
        await _collect(services, _ask(t2))  # t1's answer may quote t1's manuals: never served to t2
        assert fake.calls == 2


async def test_the_hourly_ai_limit_refuses_clearly_and_counts_model_requests_only(
    services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic
) -> None:
    async with services_factory(kdb_url, **online(fake, ai_requests_per_hour=2)) as services:
        tenant, _ = await _manual(services)
        other, _ = await _manual(services)
        await _collect(services, _ask(tenant, "What does code E7 mean?"))
        await _collect(services, _ask(tenant, "What does code E3 mean?"))
        with pytest.raises(RateLimited) as info:
            await _collect(services, _ask(tenant, "How often should filters be replaced?"))
        assert "2 AI requests for this hour" in info.value.message and 0 < info.value.retry_after <= 3600
        assert fake.calls == 2
        # A cached answer costs nothing and is still served; another tenant has its own limit.
        _, cached = await _collect(services, _ask(tenant, "what does code e7 mean"))
        assert cached.usage["cached"] is True
        await _collect(services, _ask(other, "How often should filters be replaced?"))
        assert fake.calls == 3
        # The window is in Postgres: a restart does not reset it.
        count = await services.db.fetchval("SELECT requests FROM ai_rate_windows WHERE tenant_id = $1", tenant)
        assert count == 2


@pytest.mark.parametrize(
    ("behaviour", "error", "needle"),
    [
        (Fail(529, "overloaded_error", "Overloaded"), Unavailable, "overloaded"),
        (Fail(401, "authentication_error", "invalid x-api-key"), Unavailable, "ANTHROPIC_API_KEY"),
        (Fail(429, "rate_limit_error", "slow down", {"retry-after": "17"}), RateLimited, "rate limiting"),
        (Fail(400, "invalid_request_error", "prompt is too long"), Unavailable, "prompt is too long"),
        (BreakStream(["Code E7 means "]), Unavailable, "overloaded"),
        (Hang(["Code E7"]), Unavailable, "within 0.5 s"),
    ],
    ids=["overloaded", "bad-key", "throttled", "rejected", "broken-stream", "hang"],
)
async def test_api_errors_and_timeouts_end_in_a_clear_error(
    services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic, behaviour: Any, error: type, needle: str
) -> None:
    fake.script.append(behaviour)
    async with services_factory(kdb_url, **online(fake, ai_timeout_s=0.5)) as services:
        tenant, _ = await _manual(services)
        with trio.fail_after(5):  # never a hang
            with pytest.raises(error) as info:
                await _collect(services, _ask(tenant))
        assert needle in info.value.message
        if isinstance(info.value, RateLimited) and needle == "rate limiting":
            assert info.value.retry_after == 17
        assert [r["outcome"] for r in await _ledger(services, tenant)] == ["failed"]
        # Nothing was cached: the next question reaches the API again.
        await _collect(services, _ask(tenant))
        assert fake.calls == 2


async def test_a_truncated_answer_says_so(services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic) -> None:
    fake.script.append(Reply(["Step one: check the"], stop_reason="max_tokens"))
    async with services_factory(kdb_url, **online(fake)) as services:
        tenant, _ = await _manual(services)
        deltas, final = await _collect(services, _ask(tenant))
        assert final.text.startswith("Step one: check the") and "cut at the length limit" in final.text
        assert "".join(deltas) == final.text


async def test_without_an_api_key_the_answer_quotes_and_cites_the_manuals(
    services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic
) -> None:
    async with services_factory(kdb_url) as services:  # no ANTHROPIC_API_KEY
        tenant, doc = await _manual(services)
        deltas, final = await _collect(services, _ask(tenant))
        assert fake.calls == 0
        assert final.text.startswith("Excerpts from the manuals (quoted passages, not a generated answer)")
        assert "Code E7 means the outdoor fan motor is locked" in final.text and "".join(deltas) == final.text
        assert final.citations[0] == {"n": 1, "source": "Zephyr ZX-90 Service Manual", "page": 2, "document_id": str(doc["id"])}
        assert final.usage["offline"] is True and final.usage["cost_usd"] == 0
        assert [r["outcome"] for r in await _ledger(services, tenant)] == ["offline"]


# -- through the DiagnosticSession actor ----------------------------------------------------


async def _session(services: Services, tenant: uuid.UUID) -> tuple[Address, Caller]:
    alice = Caller(str(uuid.uuid4()), str(tenant))
    key = str(uuid.uuid4())
    address = Address("session", key)
    equipment = {"name": "Roof unit 3", "manufacturer": "Zephyr", "model": "ZX-90", "type": "split system"}
    await services.actors.ask(address, create_command(key, str(tenant), alice, equipment=equipment), principal=alice)
    return address, alice


async def _until_ai_message(sub: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with trio.fail_after(10):
        while True:
            frame = (await sub.receive()).message
            frames.append(frame)
            if frame["type"] == "new_message" and frame["message"]["sender_id"] == "ai":
                return frames


async def test_the_session_actor_streams_the_answer_and_reports_failures(
    services_factory: Callable[..., Any], kdb_url: str, fake: FakeAnthropic
) -> None:
    fake.script.extend([Reply(["E7: the outdoor fan ", "motor is locked [1]."]), Fail(529, "overloaded_error", "Overloaded")])
    async with services_factory(kdb_url, **online(fake)) as services:
        tenant, doc = await _manual(services)
        address, alice = await _session(services, tenant)
        sub = services.actors.new_subscriber("session", principal=alice)
        await services.actors.attach(address, sub)
        assert (await sub.receive()).message["type"] == "session_state"

        await services.actors.ask(address, {"type": "post_message", "text": E7_QUESTION, "ask_ai": True}, principal=alice)
        frames = await _until_ai_message(sub)
        deltas = [f["delta"] for f in frames if f["type"] == "ai_delta"]
        answer = frames[-1]["message"]
        assert deltas == ["E7: the outdoor fan ", "motor is locked [1]."] and answer["text"] == "".join(deltas)
        assert answer["kind"] == "ai" and answer["citations"] == [
            {"n": 1, "source": "Zephyr ZX-90 Service Manual", "page": 2, "document_id": str(doc["id"])}
        ]
        assert answer["usage"]["model"] == "claude-sonnet-4-6" and answer["usage"]["cached"] is False

        await services.actors.ask(
            address, {"type": "post_message", "text": "How often should filters be replaced?", "ask_ai": True}, principal=alice
        )
        error = (await _until_ai_message(sub))[-1]["message"]
        assert error["kind"] == "ai_error" and "overloaded" in error["text"]
        # The question that failed is still in the session, and the session can be asked again.
        state = await services.actors.ask(address, {"type": "get"}, principal=alice)
        assert state["ai"] is None
        assert any(m["text"] == "How often should filters be replaced?" for m in state["messages"])
        assert fake.calls == 2


async def test_echo_mode_keeps_the_deterministic_assistant(services_factory: Callable[..., Any], kdb_url: str) -> None:
    async with services_factory(kdb_url, ai_assistant="echo") as services:
        tenant = await new_tenant(services.db)
        _, final = await _collect(services, _ask(tenant))
        assert final.usage["model"] == "echo"
