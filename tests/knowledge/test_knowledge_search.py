"""Hybrid search over the sample corpus: exact model numbers and codes, fusion, threads."""

from __future__ import annotations

import pytest
import trio

from ensemble.knowledge import Chunk, KnowledgeBase, SearchFilters, fuse

from .helpers import chunk


def _top(kb: KnowledgeBase, query: str, k: int = 3, **filters: str) -> list[tuple[str, int]]:
    return [(r.metadata["document_id"], r.citation["page"]) for r in kb.search(query, k=k, filters=SearchFilters(**filters))]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("24ACC6", "carrier-24acc6-service"),
        ("GMVC96", "goodman-gmvc96-furnace"),
        ("ML14XC1", "lennox-ml14xc1-service"),
        ("XV20i", "trane-xv20i-service"),
        ("4TTR4036", "trane-xr14-service"),  # a row of the XR14 electrical table
    ],
)
def test_exact_model_numbers_find_their_manual(sample_kb: KnowledgeBase, query: str, expected: str) -> None:
    assert _top(sample_kb, query)[0][0] == expected


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ("E4", ("daikin-dx16tc-service", 4)),  # the page about E4 locked rotor
        ("Daikin E8", ("daikin-dx16tc-service", 5)),
        ("E 290", ("lennox-sl280-furnace", 3)),
        ("alert 131", ("trane-xv20i-service", 2)),
    ],
)
def test_error_codes_find_their_pages(sample_kb: KnowledgeBase, query: str, page: tuple[str, int]) -> None:
    assert page in _top(sample_kb, query)


def test_nameplate_model_falls_back_to_the_family_prefix(sample_kb: KnowledgeBase) -> None:
    # "GSX140361A" is on no page; its family "gsx140361" (the table row) is.
    assert _top(sample_kb, "GSX140361A run capacitor", k=1) == [("goodman-gsx14-service", 1)]
    # "24ACC636A003" is on page 1 verbatim, and its prefix "24acc6" everywhere else.
    assert _top(sample_kb, "24ACC636A003", k=1)[0][0] == "carrier-24acc6-service"


def test_hybrid_beats_each_ranker_on_a_code_plus_paraphrase_query(sample_kb: KnowledgeBase) -> None:
    results = sample_kb.search("Daikin condenser showing E4, won't start", k=5)
    best = results[0]
    assert (best.metadata["document_id"], best.citation["page"]) == ("daikin-dx16tc-service", 4)
    assert best.metadata["lexical_score"] is not None and best.metadata["dense_score"] is not None


def test_filters_apply_to_the_sample_corpus(sample_kb: KnowledgeBase) -> None:
    results = sample_kb.search("flame sensor microamps", k=10, filters=SearchFilters(manufacturer="Goodman"))
    assert results and {r.metadata["manufacturer"] for r in results} == {"Goodman"}
    furnaces = sample_kb.search("pressure switch", k=10, filters=SearchFilters(equipment_type="gas_furnace"))
    assert {r.metadata["equipment_type"] for r in furnaces} == {"gas_furnace"}
    charging = sample_kb.search("subcooling", k=10, filters=SearchFilters(category="charging"))
    assert {r.metadata["category"] for r in charging} == {"charging"}


def _c(cid: str) -> Chunk:
    return chunk(cid, cid)


def test_fuse_is_reciprocal_rank_fusion() -> None:
    dense = [(_c("a"), 0.9), (_c("b"), 0.8)]
    lexical = [(_c("x"), 12.0), (_c("b"), 3.0)]
    fused = fuse(dense, lexical, rrf_k=60)
    # In both lists beats the top of one; a tie goes to the BM25 evidence.
    assert [f.chunk.id for f in fused] == ["b", "x", "a"]
    assert fused[0].score == pytest.approx(2 / 62)
    assert (fused[0].dense_score, fused[0].lexical_score) == (0.8, 3.0)
    assert (fused[2].dense_score, fused[2].lexical_score, fused[2].identifier_score) == (0.9, None, None)
    weighted = fuse(dense, lexical, rrf_k=60, dense_weight=0.0)
    assert [f.chunk.id for f in weighted][:2] == ["x", "b"]


def test_identifier_vote_lifts_a_page_only_bm25_finds() -> None:
    dense = [(_c("a"), 0.9), (_c("b"), 0.8), (_c("row"), 0.1)]
    lexical = [(_c("row"), 9.0), (_c("a"), 3.0), (_c("b"), 2.0)]
    assert fuse(dense, lexical)[0].chunk.id == "a"
    assert fuse(dense, lexical, [(_c("row"), 5.0)])[0].chunk.id == "row"


def test_manual_model_on_every_chunk_does_not_vote(sample_kb: KnowledgeBase) -> None:
    # "24acc6" is in every chunk's context prefix: it must not reorder the
    # manual's pages; "24acc636a003" names one page and does vote.
    (generic,) = sample_kb.search("spring maintenance Carrier 24ACC6", k=1)
    assert generic.metadata["identifier_match"] is False
    (plate,) = sample_kb.search("24ACC636A003", k=1)
    assert plate.metadata["identifier_match"] is True and plate.citation["page"] == 1


async def test_search_runs_in_a_worker_thread_from_trio(sample_kb: KnowledgeBase) -> None:
    # The documented way to call the knowledge base from the server.
    async def one(query: str, out: list[str]) -> None:
        results = await trio.to_thread.run_sync(lambda: sample_kb.search(query, k=1))
        out.append(results[0].metadata["document_id"])

    found: list[str] = []
    async with trio.open_nursery() as nursery:
        for q in ("24ACC6 subcooling", "GMVC96 E7", "XV20i alert 126", "SL280 E 240"):
            nursery.start_soon(one, q, found)
    assert sorted(found) == sorted(
        ["carrier-24acc6-service", "goodman-gmvc96-furnace", "trane-xv20i-service", "lennox-sl280-furnace"]
    )
