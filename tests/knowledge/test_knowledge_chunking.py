"""Chunking: page boundaries, overlap, headings, ids, sizes, metadata."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble.errors import InvalidInput
from ensemble.knowledge import (
    DocumentMeta,
    ExtractedDocument,
    Page,
    chunk_document,
    extract_document,
    infer_category,
)
from ensemble.knowledge._chunking import count_words

from .helpers import pdf_of

META = DocumentMeta(source="Acme AC100 Service Manual", manufacturer="Acme", model="AC100", equipment_type="split_system_ac")


def _doc(*pages: str, fmt: str = "markdown") -> ExtractedDocument:
    return ExtractedDocument(
        content_hash="ab" * 32,
        format=fmt,  # type: ignore[arg-type]
        pages=tuple(Page(i + 1, t) for i, t in enumerate(pages)),
    )


def _sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix.title()} sentence number {i} talks about the compressor." for i in range(n))


def test_chunks_never_span_pages() -> None:
    doc = _doc("# One\n\n" + _sentences("alpha", 40), "# Two\n\n" + _sentences("beta", 40))
    chunks = chunk_document(doc, META, max_words=60, overlap_words=10)
    assert {c.page for c in chunks} == {1, 2}
    for c in chunks:
        assert ("Alpha" in c.text) != ("Beta" in c.text)
        assert ("Alpha" in c.text) == (c.page == 1)


def test_chunk_size_and_overlap() -> None:
    doc = _doc("# Section\n\n" + _sentences("alpha", 60))
    chunks = chunk_document(doc, META, max_words=60, overlap_words=12)
    assert len(chunks) > 3
    for c in chunks:
        assert count_words(c.text) <= 60
    for prev, nxt in zip(chunks, chunks[1:]):
        # The next chunk starts with the last sentence(s) of the previous one.
        first_sentence = nxt.text.split(".")[0]
        assert first_sentence in prev.text
        assert nxt.text != prev.text


def test_a_unit_longer_than_a_chunk_is_cut_into_overlapping_windows() -> None:
    words = [f"w{i}" for i in range(130)]  # one "sentence" with no full stop
    chunks = chunk_document(_doc("# S\n\n" + " ".join(words)), META, max_words=50, overlap_words=10)
    assert [c.text.split()[0] for c in chunks] == ["w0", "w40", "w80"]
    assert all(count_words(c.text) <= 50 for c in chunks)
    assert chunks[-1].text.split()[-1] == "w129"


def test_no_overlap_when_disabled() -> None:
    doc = _doc("# Section\n\n" + _sentences("alpha", 60))
    chunks = chunk_document(doc, META, max_words=60, overlap_words=0)
    numbers = [int(n) for c in chunks for n in re.findall(r"number (\d+)", c.text)]
    assert numbers == list(range(60))  # every sentence exactly once, in order


def test_heading_breadcrumbs_carry_over_pages() -> None:
    doc = _doc(
        "# Troubleshooting\n\n## Flash codes\n\nTwo flashes: pressure switch open.",
        "Continued: three flashes means the igniter circuit is open.",
        "# Maintenance\n\nClean the coil.",
    )
    chunks = chunk_document(doc, META)
    assert [(c.page, c.heading) for c in chunks] == [
        (1, "Troubleshooting > Flash codes"),
        (2, "Troubleshooting > Flash codes"),
        (3, "Maintenance"),
    ]


def test_headings_split_sections_and_are_prefixed_to_the_embedded_text() -> None:
    doc = _doc("# Charging\n\nAdd refrigerant slowly.\n\n## Subcooling\n\nTarget 12 F.")
    first, second = chunk_document(doc, META)
    assert first.heading == "Charging" and "Target" not in first.text
    assert second.heading == "Charging > Subcooling"
    assert second.embed_text.startswith("Acme AC100 - Charging > Subcooling\n")
    assert second.text == "Target 12 F."


def test_pdf_headings_are_detected_by_line_heuristics() -> None:
    # Without markup, ALL-CAPS lines and a page's opening line are top-level,
    # other Title Case lines sub-headings; sentences and table rows are not
    # headings.
    pdf = pdf_of(
        [
            [
                ("h1", "DIAGNOSTIC CODES"),
                ("p", "Four red flashes mean locked rotor."),
                ("h2", "E2 Pressure Switch"),
                ("p", "Read the pressures with gauges."),
                ("pre", "Outdoor    Suction    Liquid\n95F        135        320"),
                ("h2", "3.1 Welded Contactor"),
                ("p", "Replace the contactor."),
            ]
        ]
    )
    chunks = chunk_document(extract_document(pdf, filename="m.pdf"), META)
    assert [c.heading for c in chunks] == [
        "DIAGNOSTIC CODES",
        "DIAGNOSTIC CODES > E2 Pressure Switch",
        "DIAGNOSTIC CODES > 3.1 Welded Contactor",
    ]
    assert "Outdoor" in chunks[1].text
    titled = pdf_of([[("h1", "Troubleshooting E4"), ("p", "Locked rotor."), ("h2", "Checks"), ("p", "Test the capacitor.")]])
    headings = [c.heading for c in chunk_document(extract_document(titled, filename="t.pdf"), META)]
    assert headings == ["Troubleshooting E4", "Troubleshooting E4 > Checks"]


def test_long_tables_repeat_their_header_row() -> None:
    rows = "\n".join(f"| {t}°F | {100 + t} | {300 + t} |" for t in range(60, 120, 2))
    doc = _doc(f"# Pressure chart\n\n| Outdoor | Suction psig | Liquid psig |\n|---|---|---|\n{rows}")
    chunks = chunk_document(doc, META, max_words=40, overlap_words=0)
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith("| Outdoor | Suction psig | Liquid psig |")
        assert "|---|" not in c.text


def test_chunk_ids_are_stable_per_hash_page_and_position() -> None:
    doc = _doc("# A\n\n" + _sentences("x", 30), "# B\n\ntext")
    first = chunk_document(doc, META, max_words=50, overlap_words=10)
    again = chunk_document(doc, META, max_words=50, overlap_words=10)
    assert [c.id for c in first] == [c.id for c in again]
    assert first[0].id == "abababababababab-p1-0"
    assert [c.position for c in first if c.page == 1] == list(range(len([c for c in first if c.page == 1])))
    other = ExtractedDocument(content_hash="cd" * 32, format="markdown", pages=doc.pages)
    assert not {c.id for c in first} & {c.id for c in chunk_document(other, META, max_words=50, overlap_words=10)}


def test_metadata_is_copied_and_document_id_defaults_to_the_hash() -> None:
    meta = DocumentMeta(
        source="S", manufacturer="Acme", model="AC100", equipment_type="heat_pump",
        category="maintenance", tenant_id="t1", updated_at="2024-01-15",
    )
    (c,) = chunk_document(_doc("# X\n\nhello world"), meta)
    assert (c.document_id, c.source, c.manufacturer, c.model) == ("ab" * 32, "S", "Acme", "AC100")
    assert (c.equipment_type, c.category, c.tenant_id, c.updated_at) == ("heat_pump", "maintenance", "t1", "2024-01-15")
    (named,) = chunk_document(_doc("# X\n\nhello world"), meta, document_id="doc-7")
    assert named.document_id == "doc-7"


@pytest.mark.parametrize(
    ("heading", "text", "category"),
    [
        ("Troubleshooting > Flash codes", "", "troubleshooting"),
        ("Refrigerant Charging", "", "charging"),
        ("Annual Maintenance", "", "maintenance"),
        ("Sequence of Operation", "", "operation"),
        ("Clearances and Placement", "", "installation"),
        ("Electrical Data", "", "specs"),
        (None, "Measure superheat at the suction line.", "charging"),
        ("Introduction", "Welcome.", "general"),
    ],
)
def test_category_inference(heading: str | None, text: str, category: str) -> None:
    assert infer_category(heading, text) == category


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "  "}, "source name"),
        ({"source": "S", "category": "recipes"}, "unknown category"),
        ({"source": "S", "updated_at": "last tuesday"}, "ISO-8601"),
        ({"source": "S" * 300}, "longer than"),
    ],
)
def test_bad_document_metadata_is_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        DocumentMeta(**kwargs)


def test_bad_chunk_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        chunk_document(_doc("# A\n\ntext"), META, max_words=10)
    with pytest.raises(InvalidInput):
        chunk_document(_doc("# A\n\ntext"), META, max_words=100, overlap_words=60)


def test_headings_only_document_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no text"):
        chunk_document(_doc("# A\n\n## B\n"), META)


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_line = st.lists(_word, min_size=1, max_size=40).map(" ".join)
_block = st.one_of(_line, _line.map(lambda s: "## " + s), _line.map(lambda s: "- " + s), st.just(""))
_page = st.lists(_block, min_size=1, max_size=25).map("\n".join)


@settings(max_examples=150, deadline=None)
@given(pages=st.lists(_page, min_size=1, max_size=4), max_words=st.integers(20, 120), overlap=st.integers(0, 9))
def test_property_chunks_cover_each_page_within_size(pages: list[str], max_words: int, overlap: int) -> None:
    doc = _doc(*pages)
    body_words = [
        {w for line in p.splitlines() if not line.startswith("#") for w in line.removeprefix("- ").split()}
        for p in pages
    ]
    if not any(body_words):
        with pytest.raises(InvalidInput):
            chunk_document(doc, META, max_words=max_words, overlap_words=overlap)
        return
    chunks = chunk_document(doc, META, max_words=max_words, overlap_words=overlap)
    for c in chunks:
        assert count_words(c.text) <= max_words
        assert set(c.text.replace("- ", " ").split()) <= body_words[c.page - 1]  # never another page's words
    for number, words in enumerate(body_words, start=1):
        covered = {w for c in chunks if c.page == number for w in c.text.replace("- ", " ").split()}
        assert covered == words  # nothing on the page is lost
