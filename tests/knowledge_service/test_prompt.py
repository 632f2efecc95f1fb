"""The pure parts of the assistant: prompt layout, cache key, citations, cost."""

from __future__ import annotations

import pytest

from ensemble.config import load_settings
from ensemble.errors import ConfigError
from ensemble.knowledge import SearchResult
from ensemble.knowledge._prompt import (
    SYSTEM_PROMPT,
    TokenUsage,
    build_prompt,
    cache_key,
    cited,
    cost_usd,
    normalize_question,
    price_for,
    retrieval_query,
)
from ensemble.knowledge.assistant import AssistantRequest, EquipmentContext, HistoryMessage

EQUIPMENT = EquipmentContext(name="Roof unit", manufacturer="Carrier", model="24ACC6", type="split system")


def _result(page: int, text: str, doc: str = "d1", source: str = "Carrier 24ACC6 Service Manual") -> SearchResult:
    return SearchResult(
        chunk_id=f"{doc}-p{page}", score=0.1, text=text,
        citation={"source": source, "page": page, "document_id": doc}, metadata={"heading": None},
    )


def _request(question: str = "Why is suction pressure low?", **kw: object) -> AssistantRequest:
    return AssistantRequest(tenant_id="t", session_id="s", request_id="r", question=question,
                            equipment=kw.pop("equipment", EQUIPMENT), asked_by="Alice", **kw)  # type: ignore[arg-type]


def test_prompt_layout_marks_the_stable_prefix_for_caching() -> None:
    history = (
        HistoryMessage("assistant", "AI Assistant", "Earlier answer", "t0"),  # a leading assistant turn is dropped
        HistoryMessage("user", "Bob", "The unit hums.", "t1"),
        HistoryMessage("user", "Alice", "Fan does not start.", "t2"),
        HistoryMessage("assistant", "AI Assistant", "Check the capacitor.", "t3"),
    )
    prompt = build_prompt(_request(history=history), [_result(4, "Low charge lowers suction."), _result(4, "More.")])
    assert [b.get("cache_control") for b in prompt.system] == [{"type": "ephemeral"}, None, {"type": "ephemeral"}]
    assert prompt.system[0]["text"] == SYSTEM_PROMPT
    assert "Manufacturer: Carrier" in prompt.system[1]["text"] and "guided" in prompt.system[1]["text"]
    assert "[1] Carrier 24ACC6 Service Manual p.4\nLow charge lowers suction." in prompt.system[2]["text"]
    assert [m["role"] for m in prompt.messages] == ["user", "assistant", "user"]
    assert prompt.messages[0]["content"] == "[Bob] The unit hums.\n\n[Alice] Fan does not start."
    assert prompt.messages[-1]["content"] == "[Alice] Why is suction pressure low?"
    # One citation per (document, page).
    assert prompt.citations == [{"n": 1, "source": "Carrier 24ACC6 Service Manual", "page": 4, "document_id": "d1"}]


def test_a_prompt_without_passages_says_so() -> None:
    prompt = build_prompt(_request(equipment=None), [])
    assert "No passage of the manuals matched" in prompt.system[2]["text"]
    assert prompt.citations == [] and prompt.messages == [{"role": "user", "content": "[Alice] Why is suction pressure low?"}]


def test_retrieval_query_adds_the_equipment() -> None:
    assert retrieval_query(_request("E4 code?")) == "E4 code? Carrier 24ACC6 split system"


def test_cache_key_ignores_case_spacing_and_trailing_punctuation_but_not_equipment() -> None:
    base = cache_key(_request("Why is suction pressure low?"), "m")
    assert cache_key(_request("  why IS suction   pressure low "), "m") == base
    assert cache_key(_request("Why is suction pressure low?!"), "m") == base
    assert cache_key(_request("Why is suction pressure high?"), "m") != base
    assert cache_key(_request(equipment=EquipmentContext(manufacturer="Trane", model="XR14")), "m") != base
    assert cache_key(_request(mode="expert"), "m") != base
    assert cache_key(_request(), "other-model") != base
    assert normalize_question("Ｅ４ code?") == "e4 code"


def test_cited_keeps_the_numbers_the_answer_uses_or_all_when_it_uses_none() -> None:
    citations = [
        {"n": 1, "source": "A", "page": 1, "document_id": "a"},
        {"n": 2, "source": "B", "page": 7, "document_id": "b"},
    ]
    assert cited("See [2].", citations) == [citations[1]]
    assert cited("No numbers here.", citations) == citations
    assert cited("[9] is not a passage", citations) == citations


def test_cost_uses_the_longest_matching_price_prefix() -> None:
    table = load_settings().ai_price_table
    assert price_for("claude-opus-4-5-20251101", table) == (5.0, 25.0, 6.25, 0.5)
    assert price_for("claude-opus-4-1-20250805", table) == (15.0, 75.0, 18.75, 1.5)
    assert price_for("claude-opus-4-7", table) is None  # unknown prices are not guessed
    assert price_for("gpt-4", table) is None
    usage = TokenUsage(input_tokens=1000, output_tokens=500, cache_read_tokens=2000, cache_write_tokens=4000)
    assert cost_usd(usage, (3.0, 15.0, 3.75, 0.3)) == pytest.approx((3000 + 7500 + 600 + 15000) / 1e6)
    assert cost_usd(usage, None) == 0.0


def test_bad_price_table_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENSEMBLE_AI_PRICES", "claude-x=3/15")
    with pytest.raises(ConfigError, match="ENSEMBLE_AI_PRICES"):
        load_settings()
