"""Extraction: PDF / Markdown / text -> pages, and every way an upload is refused."""

from __future__ import annotations

import hashlib

import pytest

from ensemble.errors import InvalidInput, UnsupportedMediaType
from ensemble.knowledge import detect_format, extract_document

from .helpers import encrypted, pdf_of

MANUAL_PDF = pdf_of(
    [
        [("h1", "Specifications"), ("p", "The condenser uses R-410A refrigerant and a scroll compressor.")],
        [("h1", "Troubleshooting"), ("p", "Code E4 means locked rotor: test the run capacitor first.")],
        [("h1", "Maintenance"), ("p", "Clean the outdoor coil every spring.")],
    ],
    title="Acme AC100 Service Manual",
)


# -- PDF ----------------------------------------------------------------------
def test_pdf_is_extracted_page_by_page() -> None:
    doc = extract_document(MANUAL_PDF, filename="acme.pdf")
    assert doc.format == "pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "scroll compressor" in doc.pages[0].text
    assert "locked rotor" in doc.pages[1].text and "locked rotor" not in doc.pages[0].text
    assert doc.pages[2].text.startswith("Maintenance")
    assert doc.metadata["title"] == "Acme AC100 Service Manual"


def test_content_hash_is_sha256_of_the_bytes() -> None:
    doc = extract_document(MANUAL_PDF, filename="acme.pdf")
    assert doc.content_hash == hashlib.sha256(MANUAL_PDF).hexdigest()
    assert extract_document(MANUAL_PDF).content_hash == doc.content_hash


def test_pdf_magic_wins_over_a_wrong_declared_type() -> None:
    assert detect_format(MANUAL_PDF, filename="manual.txt", media_type="text/plain") == "pdf"


def test_pdf_encrypted_with_a_password_is_refused() -> None:
    locked = encrypted(MANUAL_PDF, user_password="s3cret")
    with pytest.raises(InvalidInput, match="encrypted with a password"):
        extract_document(locked, filename="locked.pdf")


def test_pdf_encrypted_rc4_with_a_password_is_refused() -> None:
    locked = encrypted(MANUAL_PDF, user_password="s3cret", algorithm="RC4-128")
    with pytest.raises(InvalidInput, match="encrypted with a password"):
        extract_document(locked, filename="locked.pdf")


def test_pdf_with_only_an_owner_password_is_readable() -> None:
    # Vendors "encrypt" manuals with an empty user password to stop edits.
    doc = extract_document(encrypted(MANUAL_PDF, user_password=""), filename="owner-only.pdf")
    assert "locked rotor" in doc.pages[1].text


def test_pdf_without_text_is_refused() -> None:
    blank = pdf_of([[], []])
    with pytest.raises(InvalidInput, match="no extractable text"):
        extract_document(blank, filename="scan.pdf")


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n this is not really a pdf \n%%EOF",
        MANUAL_PDF[:120],
        b"\x00\x01garbage\xff" * 40,
    ],
    ids=["fake-header", "truncated", "binary-junk"],
)
def test_garbage_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        extract_document(data, filename="broken.pdf", media_type="application/pdf")
    assert info.value.status == 422
    assert "PDF" in info.value.message


def test_empty_upload_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        extract_document(b"", filename="x.pdf")


# -- Markdown -------------------------------------------------------------------
MARKDOWN = """---
source: Acme AC100 Notes
manufacturer: Acme
model: "AC100"
---
Preface line before any heading.

# Specifications

Capacity 3 tons.

# Troubleshooting

## Flash codes

Two flashes: pressure switch open.
"""


def test_markdown_front_matter_and_h1_pages() -> None:
    doc = extract_document(MARKDOWN.encode(), filename="notes.md")
    assert doc.format == "markdown"
    assert doc.metadata == {"source": "Acme AC100 Notes", "manufacturer": "Acme", "model": "AC100"}
    assert len(doc.pages) == 2
    assert doc.pages[0].text.startswith("Preface line")  # preface joins page 1
    assert "# Specifications" in doc.pages[0].text
    assert doc.pages[1].text.startswith("# Troubleshooting")
    assert "---" not in doc.pages[0].text


def test_markdown_explicit_page_breaks_win_over_headings() -> None:
    text = "# One\nalpha\n<!-- pagebreak -->\n# Two\nbeta\n\f# Three\ngamma\n# Four\ndelta"
    doc = extract_document(text.encode(), media_type="text/markdown")
    assert [p.text.splitlines()[0] for p in doc.pages] == ["# One", "# Two", "# Three"]
    assert "# Four" in doc.pages[2].text


def test_markdown_bad_front_matter_is_refused() -> None:
    with pytest.raises(InvalidInput, match="front matter"):
        extract_document(b"---\nthis line has no colon\n---\n# A\ntext", filename="x.md")


def test_markdown_with_only_front_matter_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no text"):
        extract_document(b"---\nsource: x\n---\n\n  \n", filename="x.md")


# -- plain text -------------------------------------------------------------------
def test_text_form_feeds_split_pages_and_bom_is_dropped() -> None:
    doc = extract_document("\ufeffpage one\r\nline\fpage two".encode(), filename="manual.txt")
    assert doc.format == "text"
    assert [p.text for p in doc.pages] == ["page one\nline", "page two"]


def test_text_without_form_feed_is_one_page() -> None:
    doc = extract_document(b"just some notes\nmore notes", media_type="text/plain; charset=utf-8")
    assert len(doc.pages) == 1


def test_non_utf8_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not UTF-8"):
        extract_document("caf\u00e9 au lait".encode("latin-1"), filename="notes.txt")


def test_binary_disguised_as_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="binary"):
        extract_document(b"abc\x00\x01\x02\x03" * 50, filename="notes.txt")


def test_whitespace_only_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no text"):
        extract_document(b"  \n\f \n", filename="notes.txt")


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [("photo.png", None), (None, "image/png"), ("manual.docx", None)],
)
def test_unsupported_types_are_415(filename: str | None, media_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        extract_document(b"\x89PNG\r\n", filename=filename, media_type=media_type)
    assert info.value.status == 415
