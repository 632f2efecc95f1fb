"""Uploaded bytes -> pages of text (PDF, Markdown, plain text).

Pure and synchronous: parsing a 300-page PDF takes seconds of CPU, so the
caller runs :func:`extract_document` in ``trio.to_thread``.  Every way an
upload can be unusable ends in :class:`InvalidInput` with a message a manual
uploader can act on; unsupported kinds end in :class:`UnsupportedMediaType`.

Page rules:

* PDF: one page per PDF page, numbered as in the file.
* Markdown: form feeds (``\\f``) or ``<!-- pagebreak -->`` lines split pages
  when present; otherwise each top-level ``# `` heading starts a page, which
  is how the sample manuals are written (one printed page per ``#`` section).
* Plain text: form feeds split pages (the ``pdftotext`` convention), else the
  whole file is page 1.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import PurePath
from typing import Any, Final

from ..errors import InvalidInput, UnsupportedMediaType
from ._types import DocumentFormat, ExtractedDocument, Page

__all__ = ["MAX_PAGES", "detect_format", "extract_document", "content_hash"]

MAX_PAGES: Final = 5000

_PDF_TYPES: Final = frozenset({"application/pdf", "application/x-pdf"})
_MD_TYPES: Final = frozenset({"text/markdown", "text/x-markdown"})
_TEXT_TYPES: Final = frozenset({"text/plain"})
_MD_SUFFIXES: Final = frozenset({".md", ".markdown", ".mdown"})
_TEXT_SUFFIXES: Final = frozenset({".txt", ".text"})

_FRONT_MATTER: Final = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_PAGEBREAK: Final = re.compile(r"^\s*<!--\s*pagebreak\s*-->\s*$", re.M | re.I)
_H1: Final = re.compile(r"^# \S", re.M)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")  # control characters but \t \n \f \r
# Information-dictionary keys read from PDFs: the standard title, plus the
# DocumentMeta fields a producer (like our sample writer) may declare.
_PDF_INFO_KEYS: Final = frozenset({"title", "source", "manufacturer", "model", "equipment_type", "category", "updated_at"})


def content_hash(data: bytes) -> str:
    """sha256 hex of the uploaded bytes: the identity of a document version."""
    return hashlib.sha256(data).hexdigest()


def detect_format(data: bytes, *, filename: str | None = None, media_type: str | None = None) -> DocumentFormat:
    # Magic bytes win over a declared type: browsers send PDFs as
    # application/octet-stream often enough that trusting the header fails.
    if data[:1024].lstrip()[:5] == b"%PDF-":
        return "pdf"
    mt = (media_type or "").split(";")[0].strip().lower()
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if mt in _PDF_TYPES or suffix == ".pdf":
        return "pdf"  # declared PDF without the magic: rejected as unreadable below
    if mt in _MD_TYPES or suffix in _MD_SUFFIXES:
        return "markdown"
    if mt in _TEXT_TYPES or suffix in _TEXT_SUFFIXES:
        return "text"
    if mt and mt not in ("application/octet-stream", ""):
        raise UnsupportedMediaType(f"unsupported document type {mt!r}; upload PDF, Markdown or plain text")
    if suffix:
        raise UnsupportedMediaType(f"unsupported file extension {suffix!r}; upload PDF, Markdown or plain text")
    return "text"


def extract_document(
    data: bytes, *, filename: str | None = None, media_type: str | None = None
) -> ExtractedDocument:
    """Split an uploaded manual into pages of text; see the module doc for page rules."""
    if not data:
        raise InvalidInput("the document is empty (0 bytes)")
    fmt = detect_format(data, filename=filename, media_type=media_type)
    digest = content_hash(data)
    if fmt == "pdf":
        pages, meta = _pdf_pages(data)
    else:
        text = _decode_text(data)
        if fmt == "markdown":
            meta, text = _split_front_matter(text)
            pages = _markdown_pages(text)
        else:
            meta = {}
            pages = _form_feed_pages(text)
    if not any(p.text.strip() for p in pages):
        what = "PDF has no extractable text (scanned pages need OCR, which is not supported)" if fmt == "pdf" else "document contains no text"
        raise InvalidInput(f"the {what}")
    return ExtractedDocument(content_hash=digest, format=fmt, pages=tuple(pages), metadata=meta)


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the document is not UTF-8 text (invalid byte at offset {exc.start})") from None
    # Valid UTF-8 can still be binary junk (NULs, control bytes): refuse
    # rather than index noise that would pollute every search.
    controls = len(_CONTROL.findall(text))
    if controls > max(8, len(text) // 100):
        raise InvalidInput("the document looks binary, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise InvalidInput(f"front matter line {line.strip()!r} is not 'key: value'")
        meta[key.strip().lower()] = value.strip().strip("'\"")
    return meta, text[match.end() :]


def _numbered(texts: list[str]) -> list[Page]:
    if len(texts) > MAX_PAGES:
        raise InvalidInput(f"the document has {len(texts)} pages; at most {MAX_PAGES} are accepted")
    return [Page(number=i + 1, text=t.strip("\n")) for i, t in enumerate(texts)]


def _markdown_pages(text: str) -> list[Page]:
    if "\f" in text or _PAGEBREAK.search(text):
        return _numbered(re.split(r"\f|" + _PAGEBREAK.pattern, text, flags=re.M | re.I))
    starts = [m.start() for m in _H1.finditer(text)]
    if not starts:
        return _numbered([text])
    # Text before the first "# " heading (a preface) belongs to page 1.
    bounds = [0, *starts[1:], len(text)]
    return _numbered([text[a:b] for a, b in zip(bounds, bounds[1:])])


def _form_feed_pages(text: str) -> list[Page]:
    return _numbered(text.split("\f"))


def _pdf_pages(data: bytes) -> tuple[list[Page], dict[str, str]]:
    # pypdf is imported on first use: most processes importing the knowledge
    # package (gateway workers answering searches) never parse a PDF.
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                # Many vendor manuals are "encrypted" with an empty user
                # password only to forbid editing; those are readable.
                if not reader.decrypt(""):
                    raise InvalidInput("the PDF is encrypted with a password; upload an unencrypted copy")
            except InvalidInput:
                raise
            except Exception as exc:
                raise InvalidInput(f"the PDF is encrypted and cannot be decrypted ({exc})") from None
        count = len(reader.pages)
    except InvalidInput:
        raise
    except FileNotDecryptedError:
        raise InvalidInput("the PDF is encrypted with a password; upload an unencrypted copy") from None
    except Exception as exc:  # pypdf raises many exception types on junk
        raise InvalidInput(f"the file is not a readable PDF ({type(exc).__name__}: {exc})") from None
    if count == 0:
        raise InvalidInput("the PDF has no pages")
    if count > MAX_PAGES:
        raise InvalidInput(f"the PDF has {count} pages; at most {MAX_PAGES} are accepted")
    pages: list[Page] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except FileNotDecryptedError:
            raise InvalidInput("the PDF is encrypted with a password; upload an unencrypted copy") from None
        except Exception as exc:
            raise InvalidInput(f"page {number} of the PDF cannot be read ({type(exc).__name__}: {exc})") from None
        pages.append(Page(number=number, text=text.replace("\x00", "").strip("\n")))
    return pages, _pdf_info(reader)


def _pdf_info(reader: Any) -> dict[str, str]:
    """Title and our metadata keys from the PDF information dictionary."""
    meta: dict[str, str] = {}
    try:
        info = reader.metadata or {}
        for key, value in info.items():
            name = str(key).lstrip("/").lower()
            if name in _PDF_INFO_KEYS and value is not None and str(value).strip():
                meta[name] = str(value).strip()
    except Exception:  # a damaged info dictionary is no reason to refuse the text
        pass
    return meta
