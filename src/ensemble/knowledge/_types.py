"""Value types of the knowledge base: documents, pages, chunks, filters, results.

Wire shapes (what the gateway serialises) are ``TypedDict``; in-process values
are frozen dataclasses so a chunk cannot change under an index that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypedDict

from ..errors import InvalidInput

__all__ = [
    "CATEGORIES",
    "Candidates",
    "Chunk",
    "Citation",
    "DocumentFormat",
    "DocumentMeta",
    "ExtractedDocument",
    "Page",
    "Ranked",
    "SearchFilters",
    "SearchResult",
]

DocumentFormat = Literal["pdf", "markdown", "text"]

# The reference product's four categories plus the two technicians ask for
# most that fit none of them; "general" is the fallback of inference.
CATEGORIES: tuple[str, ...] = (
    "specs",
    "installation",
    "charging",
    "operation",
    "troubleshooting",
    "maintenance",
    "general",
)

_MAX_FIELD = 200


def _clean(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if len(value) > _MAX_FIELD:
        raise InvalidInput(f"{name} is longer than {_MAX_FIELD} characters")
    return value or None


@dataclass(frozen=True, slots=True)
class DocumentMeta:
    """What the uploader says about a manual; applies to all its chunks.

    ``tenant_id=None`` marks a global manual that every tenant may read.
    ``category=None`` lets the chunker infer a category per section.
    """

    source: str
    manufacturer: str | None = None
    model: str | None = None
    equipment_type: str | None = None
    category: str | None = None
    tenant_id: str | None = None
    updated_at: str | None = None

    def __post_init__(self) -> None:
        source = _clean("source", self.source)
        if not source:
            raise InvalidInput("a document needs a source name (e.g. 'Carrier 24ACC6 Service Manual')")
        object.__setattr__(self, "source", source)
        for name in ("manufacturer", "model", "equipment_type", "tenant_id"):
            object.__setattr__(self, name, _clean(name, getattr(self, name)))
        category = _clean("category", self.category)
        if category is not None:
            category = category.lower()
            if category not in CATEGORIES:
                raise InvalidInput(
                    f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
                )
        object.__setattr__(self, "category", category)
        updated = _clean("updated_at", self.updated_at)
        if updated is not None:
            try:
                datetime.fromisoformat(updated)
            except ValueError:
                raise InvalidInput(f"updated_at {updated!r} is not an ISO-8601 date") from None
        object.__setattr__(self, "updated_at", updated)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of extracted text; ``number`` is 1-based as printed in manuals."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """A document reduced to pages of text.

    ``content_hash`` (sha256 of the uploaded bytes) identifies this *version*:
    uploading the same bytes twice yields the same chunk ids.
    ``metadata`` holds what the file itself declares (Markdown front matter,
    PDF title), which the caller may merge into :class:`DocumentMeta`.
    """

    content_hash: str
    format: DocumentFormat
    pages: tuple[Page, ...]
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of one page, the unit that is embedded, ranked and cited."""

    id: str
    document_id: str
    content_hash: str
    page: int
    position: int
    text: str
    heading: str | None
    source: str
    manufacturer: str | None = None
    model: str | None = None
    equipment_type: str | None = None
    category: str | None = None
    tenant_id: str | None = None
    updated_at: str | None = None

    @property
    def context(self) -> str:
        """Product and heading: "Carrier 24ACC6 - Troubleshooting > Flash codes"."""
        context = " ".join(p for p in (self.manufacturer, self.model) if p) or self.source
        return f"{context} - {self.heading}" if self.heading else context

    @property
    def embed_text(self) -> str:
        """The text that is embedded and lexically indexed.

        The context is prefixed because a passage like "Check the
        high-pressure switch" only means something under "Carrier 24ACC6 /
        Flash codes"; the prefix lets a query naming either find it.  (The
        newline keeps the analyzer from joining the two: the terms of
        ``embed_text`` are those of ``context`` followed by those of ``text``.)
        """
        return f"{self.context}\n{self.text}"

    def metadata(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "content_hash": self.content_hash,
            "source": self.source,
            "page": self.page,
            "position": self.position,
            "heading": self.heading,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "equipment_type": self.equipment_type,
            "category": self.category,
            "tenant_id": self.tenant_id,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Metadata restrictions of a search; values match case-insensitively.

    ``tenant_id`` is visibility, not a plain filter: ``None`` sees only global
    manuals, ``"t1"`` sees global manuals and tenant t1's, never another
    tenant's.  The default is therefore the *least* visible one.
    """

    manufacturer: str | None = None
    model: str | None = None
    equipment_type: str | None = None
    category: str | None = None
    tenant_id: str | None = None

    def __post_init__(self) -> None:
        # Blank means "no filter", as a form or a query string sends it.
        for name in ("manufacturer", "model", "equipment_type", "category", "tenant_id"):
            object.__setattr__(self, name, _clean(name, getattr(self, name)))


Ranked = list[tuple[Chunk, float]]


class Candidates(NamedTuple):
    """Ranked lists for one query before fusion: dense, BM25, identifier BM25."""

    dense: Ranked
    lexical: Ranked
    identifiers: Ranked


class Citation(TypedDict):
    source: str
    page: int
    document_id: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    chunk_id: str
    score: float
    text: str
    citation: Citation
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "score": self.score,
            "text": self.text,
            "citation": dict(self.citation),
            "metadata": dict(self.metadata),
        }
