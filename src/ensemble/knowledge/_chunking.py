"""Pages -> chunks: page-aware, heading-aware passages with metadata.

Theory of operation.  A citation says "p.12", so a chunk never spans pages.
Within a page, text is cut into *units* that should not be split: a paragraph
(or its sentences when the paragraph alone is long), a list item, a table (or
row groups of a long table, each repeating the header row so a pressure chart
keeps its column names).  Units are packed greedily into chunks of at most
``max_words``; the next chunk of the same section starts with the trailing
units (up to ``overlap_words``) of the previous one, so a fact cut at the
boundary is whole in at least one chunk.  A heading closes the current chunk:
chunks do not mix sections, and each keeps the nearest heading (with its
parent, "Troubleshooting > Flash codes") because the heading is often the
only place the passage's subject is named.  Headings carry over page breaks.
Markdown says what a heading is; in PDF and plain text a heading is a short
line without final punctuation that is ALL CAPS or Title Case, optionally
numbered ("3.2 Charging"); it is top-level when ALL CAPS or when it opens the
page (manual pages usually start with their section title), else a
sub-heading.  Font sizes
are not used: pypdf's plain text loses them, and the line shape was enough
on the manuals tried.

Chunk ids are ``{content_hash[:16]}-p{page}-{position}``: re-ingesting the
same bytes gives the same ids, a new version gives new ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from ..errors import InvalidInput
from ._text import analyze
from ._types import Chunk, DocumentMeta, ExtractedDocument

__all__ = ["chunk_document", "chunk_id", "count_words", "infer_category"]

_MD_HEADING: Final = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBERED_HEADING: Final = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.)\s+(?=\S)")
_LIST_ITEM: Final = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_TABLE_SEP: Final = re.compile(r"^\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_EMPHASIS: Final = re.compile(r"(\*\*|__|`)")
_WORD: Final = re.compile(r"\S*[A-Za-z0-9]\S*")

# Ordered: the first category whose cue appears in the heading wins; the text
# is consulted only when the heading says nothing.  Cues are analyzed terms.
_CATEGORY_CUES: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("troubleshooting", frozenset({"troubleshoot", "error", "flash", "diagnostic", "diagnos", "symptom", "lockout", "problem", "code"})),
    ("charging", frozenset({"charg", "superheat", "subcool", "refrigerant", "pressur"})),
    ("maintenance", frozenset({"maintenanc", "clean", "inspect", "inspection", "filter", "season", "annual", "lubricat"})),
    ("operation", frozenset({"sequenc", "operation", "wir", "wiring", "control", "thermostat", "mode", "defrost"})),
    ("installation", frozenset({"install", "installation", "clearanc", "mount", "venting", "vent", "lin", "pip", "location", "set"})),
    ("specs", frozenset({"specification", "dimension", "electrical", "performanc", "capacity", "rating", "nomenclatur", "data", "feature", "overview"})),
)


def count_words(text: str) -> int:
    """Words as chunk sizes count them: table pipes and dashes are not words."""
    return len(_WORD.findall(text))


def chunk_id(content_hash: str, page: int, position: int) -> str:
    return f"{content_hash[:16]}-p{page}-{position}"


def infer_category(heading: str | None, text: str) -> str:
    """The reference product's ``detectCategory``: keyword cues, heading first."""
    for source in (heading or "", text):
        terms = set(analyze(source))
        for category, cues in _CATEGORY_CUES:
            if terms & cues:
                return category
    return "general"


@dataclass
class _Section:
    heading: str | None
    units: list[str] = field(default_factory=list)


def _is_plain_heading(line: str) -> bool:
    """Heading heuristic for PDF / plain text, where no markup says so."""
    s = line.strip()
    if not (3 <= len(s) <= 70) or s[-1] in ".,;:!?" or "  " in s:
        return False
    words = s.split()
    letters = sum(c.isalpha() for c in s)
    if len(words) > 9 or letters < 3 or letters < 0.6 * len(s.replace(" ", "")):
        return False
    if s.upper() == s:
        return True  # ALL-CAPS SECTION TITLE
    # "Title Case" (every long word capitalised), optionally numbered "3.2 ..."
    body = _NUMBERED_HEADING.sub("", s)
    long_words = [w for w in body.split() if len(w) > 3 and w[0].isalpha()]
    return bool(long_words) and all(w[0].isupper() for w in long_words)


def _table_units(rows: list[str], max_words: int) -> list[str]:
    header, body = rows[0], rows[1:]
    groups: list[str] = []
    current: list[str] = [header]
    words = count_words(header)
    for row in body:
        n = count_words(row)
        if len(current) > 1 and words + n > max_words:
            groups.append("\n".join(current))
            current, words = [header], count_words(header)
        current.append(row)
        words += n
    groups.append("\n".join(current))
    return groups


def _paragraph_units(text: str, max_words: int) -> list[str]:
    text = " ".join(text.split())
    if count_words(text) <= max_words // 2:
        return [text] if text else []
    return [s for s in _SENTENCE_END.split(text) if s]


def _sections(lines: list[str], *, markdown: bool, stack: list[tuple[int, str]], max_words: int) -> list[_Section]:
    """Split one page into sections; ``stack`` (level, title) carries over pages."""

    def current_heading() -> str | None:
        return " > ".join(t for _, t in stack[-2:]) if stack else None

    sections = [_Section(current_heading())]
    seen_text = False
    para: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if para:
            sections[-1].units.extend(_paragraph_units(" ".join(para), max_words))
            para.clear()
        if table:
            sections[-1].units.extend(_table_units(table, max_words))
            table.clear()

    for raw in lines:
        line = _EMPHASIS.sub("", raw.rstrip()) if markdown else raw.rstrip()
        heading: tuple[int, str] | None = None
        if markdown:
            m = _MD_HEADING.match(line)
            if m:
                heading = (len(m.group(1)), m.group(2).strip())
        elif _is_plain_heading(line):
            # A page's opening heading is its title (top level), like ALL CAPS.
            top = line.strip().upper() == line.strip() or not seen_text
            heading = (1 if top else 2, line.strip())
        seen_text = seen_text or bool(line.strip())
        if heading is not None:
            flush()
            level, title = heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            sections.append(_Section(current_heading()))
            continue
        stripped = line.strip()
        if markdown and stripped.startswith("|"):
            if para:
                flush()
            if not _TABLE_SEP.match(stripped):
                table.append(stripped)
            continue
        if table:
            flush()
        if not stripped:
            if markdown:
                flush()
            continue
        if _LIST_ITEM.match(line):
            flush()
        para.append(stripped)
    flush()
    return [s for s in sections if s.units]


def _split_long(unit: str, max_words: int, overlap: int) -> list[str]:
    if count_words(unit) <= max_words:
        return [unit]
    words = unit.split()
    step = max(1, max_words - overlap)
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words) - overlap, step)]


def _pack(units: list[str], max_words: int, overlap_words: int) -> list[str]:
    expanded = [piece for u in units for piece in _split_long(u, max_words, overlap_words)]
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    fresh = False  # does `current` hold anything not already emitted?
    for unit in expanded:
        n = count_words(unit)
        if current and fresh and count + n > max_words:
            chunks.append("\n".join(current))
            tail: list[str] = []
            tail_words = 0
            for prev in reversed(current):
                m = count_words(prev)
                if tail_words + m > overlap_words:
                    if not tail:  # one long unit: carry its last words instead
                        tail = [" ".join(prev.split()[-overlap_words:])] if overlap_words else []
                        tail_words = min(m, overlap_words)
                    break
                tail.insert(0, prev)
                tail_words += m
            # The carried tail plus this unit must still fit.
            while tail and tail_words + n > max_words:
                tail_words -= count_words(tail.pop(0))
            current, count = tail, tail_words
        current.append(unit)
        count += n
        fresh = True
    if current and fresh:
        chunks.append("\n".join(current))
    return chunks


def chunk_document(
    doc: ExtractedDocument,
    meta: DocumentMeta,
    *,
    document_id: str | None = None,
    max_words: int = 160,
    overlap_words: int = 30,
) -> list[Chunk]:
    """Chunks of ``doc`` carrying ``meta``; ``document_id`` defaults to the content hash.

    ``max_words`` ~160 words is ~220 model tokens: small enough that one chunk
    is about one thing, large enough to hold a whole troubleshooting step list.
    """
    if max_words < 20:
        raise InvalidInput("max_words must be at least 20")
    if not 0 <= overlap_words < max_words // 2:
        raise InvalidInput("overlap_words must be between 0 and half of max_words")
    doc_id = document_id or doc.content_hash
    markdown = doc.format == "markdown"
    stack: list[tuple[int, str]] = []
    chunks: list[Chunk] = []
    for page in doc.pages:
        position = 0
        for section in _sections(page.text.splitlines(), markdown=markdown, stack=stack, max_words=max_words):
            for text in _pack(section.units, max_words, overlap_words):
                chunks.append(
                    Chunk(
                        id=chunk_id(doc.content_hash, page.number, position),
                        document_id=doc_id,
                        content_hash=doc.content_hash,
                        page=page.number,
                        position=position,
                        text=text,
                        heading=section.heading,
                        source=meta.source,
                        manufacturer=meta.manufacturer,
                        model=meta.model,
                        equipment_type=meta.equipment_type,
                        category=meta.category or infer_category(section.heading, text),
                        tenant_id=meta.tenant_id,
                        updated_at=meta.updated_at,
                    )
                )
                position += 1
    if not chunks:
        raise InvalidInput("the document has no text to index")
    return chunks
