"""The offline answerer and the citation shapes it shares with an LLM answer."""

from __future__ import annotations

from ensemble.knowledge import KnowledgeBase, SearchResult, answer_offline, citations_for, format_context


def _result(cid: str, text: str, *, source: str = "Acme AC100 Manual", page: int = 4, doc: str = "acme", heading: str | None = "Charging") -> SearchResult:
    return SearchResult(
        chunk_id=cid,
        score=0.03,
        text=text,
        citation={"source": source, "page": page, "document_id": doc},
        metadata={"heading": heading},
    )


CHARGING = _result(
    "c1",
    "Charge only in cooling mode. Target subcooling is 12 F at the liquid valve. "
    "Let the system run 15 minutes first. Weigh in the charge below 55 F outdoor.",
)
SAME_PAGE = _result("c2", "If subcooling is high, recover refrigerant.")
OTHER = _result("o1", "Clean the outdoor coil every spring.", source="Acme Maintenance Guide", page=9, doc="guide", heading=None)


def test_answer_is_labelled_quoted_and_cited() -> None:
    answer = answer_offline("what subcooling should I target?", [CHARGING, OTHER])
    assert answer.offline
    assert answer.text.startswith("Excerpts from the manuals")
    assert "not a generated answer" in answer.text
    assert '[1] Acme AC100 Manual, p.4 - Charging\n"' in answer.text
    assert "[2] Acme Maintenance Guide, p.9\n" in answer.text
    assert answer.citations == [
        {"n": 1, "source": "Acme AC100 Manual", "page": 4, "document_id": "acme"},
        {"n": 2, "source": "Acme Maintenance Guide", "page": 9, "document_id": "guide"},
    ]
    assert answer.text.rstrip().endswith("Sources: [1] Acme AC100 Manual p.4; [2] Acme Maintenance Guide p.9")


def test_quotes_are_verbatim_sentences_most_relevant_first_in_page_order() -> None:
    answer = answer_offline("subcooling target", [CHARGING], max_chars_per_passage=60)
    quoted = answer.text.split('"')[1]
    assert quoted == "Target subcooling is 12 F at the liquid valve."
    for sentence in quoted.split(" … "):
        assert sentence in CHARGING.text


def test_passages_of_the_same_page_share_a_citation_number() -> None:
    answer = answer_offline("subcooling", [CHARGING, SAME_PAGE, OTHER])
    assert [c["n"] for c in answer.citations] == [1, 2]
    assert answer.text.count("[1] Acme AC100 Manual, p.4") == 2


def test_max_passages_limits_quotes_and_citations() -> None:
    answer = answer_offline("subcooling", [CHARGING, OTHER, SAME_PAGE], max_passages=1)
    assert len(answer.citations) == 1 and "[2]" not in answer.text


def test_no_results_says_so_without_citations() -> None:
    answer = answer_offline("anything", [])
    assert answer.citations == [] and "No passage" in answer.text
    assert answer.to_dict() == {"text": answer.text, "citations": [], "offline": True}


def test_quoted_table_rows_keep_their_header() -> None:
    table = _result("t", "| Outdoor | Suction psig |\n| 85°F | 132-140 |\n| 95°F | 135-145 |")
    text = answer_offline("suction at 95", [table]).text
    assert "| Outdoor | Suction psig |\n…\n| 95°F | 135-145 |" in text


def test_context_for_a_language_model_uses_the_same_numbers() -> None:
    results = [CHARGING, SAME_PAGE, OTHER]
    context = format_context(results)
    assert context.startswith("Relevant documentation:\n\n[1] Acme AC100 Manual p.4\nCharge only")
    assert "\n\n[1] Acme AC100 Manual p.4\nIf subcooling" in context
    assert "\n\n[2] Acme Maintenance Guide p.9\nClean" in context
    citations, numbers = citations_for(results)
    assert numbers == [1, 1, 2] and len(citations) == 2
    assert format_context([]) == ""


def test_end_to_end_offline_answer_from_the_sample_corpus(sample_kb: KnowledgeBase) -> None:
    question = "Daikin DX16TC showing E4, what do I check?"
    answer = answer_offline(question, sample_kb.search(question, k=3))
    assert answer.citations[0]["source"].startswith("Daikin DX16TC")
    assert answer.citations[0]["page"] == 4
    assert "locked rotor" in answer.text.lower()
