"""The bundled sample corpus and its labelled questions stay consistent."""

from __future__ import annotations

import json

from ensemble.knowledge import KnowledgeBase, extract_document, sample_documents
from ensemble.knowledge._samples import build_sample_pdf, samples_dir


def test_corpus_has_enough_pages_formats_and_manufacturers() -> None:
    docs = sample_documents()
    extracted = {d.document_id: extract_document(d.data, filename=d.filename) for d in docs}
    assert sum(len(e.pages) for e in extracted.values()) >= 40
    assert {e.format for e in extracted.values()} == {"markdown", "pdf"}
    manufacturers = {e.metadata.get("manufacturer") for e in extracted.values()} - {None}
    assert len(manufacturers) >= 6
    for doc_id, e in extracted.items():
        assert "(sample)" in e.metadata["source"], doc_id  # invented content says so


def test_committed_pdf_is_small_and_reproducible_from_its_source() -> None:
    sources = list((samples_dir() / "pdf-src").iterdir())
    assert sources
    for source in sources:
        committed = (samples_dir() / source.name.replace(".md", ".pdf")).read_bytes()
        assert len(committed) < 200_000
        assert build_sample_pdf(source.read_text()) == committed


def test_every_sample_is_indexed_with_its_metadata(sample_kb: KnowledgeBase) -> None:
    shard = sample_kb.shard(None)
    assert sorted(shard.document_ids()) == sorted(d.document_id for d in sample_documents())
    (daikin,) = sample_kb.search("DX16TC locked rotor", k=1)
    assert daikin.metadata["manufacturer"] == "Daikin" and daikin.metadata["model"] == "DX16TC"
    assert daikin.metadata["equipment_type"] == "split_system_ac" and daikin.metadata["updated_at"] == "2024-02-20"


def test_questions_reference_real_pages_and_are_not_copied_from_them() -> None:
    questions = json.loads((samples_dir() / "questions.json").read_text())["questions"]
    assert len(questions) >= 60
    pages = {
        d.document_id: {p.number: p.text for p in extract_document(d.data, filename=d.filename).pages}
        for d in sample_documents()
    }
    for item in questions:
        assert item["answers"], item
        for doc_id, page in item["answers"]:
            assert page in pages[doc_id], (item["q"], doc_id, page)
        # No question is a verbatim sentence fragment of its answer page.
        text = " ".join(pages[item["answers"][0][0]][item["answers"][0][1]].lower().split())
        assert item["q"].lower() not in text, item["q"]
