"""Turning an upload into what the index and the documents table need (CPU work, run in threads).

Ingestion is split in two so that nothing is written before the file is
known to be readable: :func:`prepare` (extract + metadata: every refusal of
a bad file happens here) runs before any lock or write; :func:`material`
(chunk + embed) runs once the document's id is decided.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ensemble.errors import InvalidInput
from ensemble.persistence.objects import global_key, tenant_key

from .._base import meta_from_document
from .._chunking import chunk_document
from .._embedding import Embedder
from .._extract import extract_document
from .._types import Chunk, DocumentMeta, ExtractedDocument

__all__ = [
    "ManualFields",
    "Prepared",
    "prepare",
    "material",
    "meta_from_row",
    "clean_filename",
    "original_key",
    "index_key",
    "MEDIA_TYPES",
]

# What the stored original is served as, by detected format.
MEDIA_TYPES = {"pdf": "application/pdf", "markdown": "text/markdown", "text": "text/plain"}
_SUFFIXES = {"pdf": "pdf", "markdown": "md", "text": "txt"}
INDEX_MEDIA_TYPE = "application/vnd.ensemble.knowledge-index"


@dataclass(frozen=True, slots=True)
class ManualFields:
    """What the uploader says about a manual; ``None`` = take it from the file."""

    source: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    equipment_type: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    doc: ExtractedDocument
    meta: DocumentMeta
    filename: str
    size: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.doc.format]

    def row_values(self, object_key: str, chunks: int) -> dict[str, Any]:
        m = self.meta
        return {
            "source": m.source, "filename": self.filename, "media_type": self.media_type, "format": self.doc.format,
            "content_hash": self.doc.content_hash, "size_bytes": self.size, "manufacturer": m.manufacturer,
            "model": m.model, "equipment_type": m.equipment_type, "category": m.category, "updated_on": m.updated_at,
            "metadata": dict(self.doc.metadata), "pages": len(self.doc.pages), "chunks": chunks,
            "object_key": object_key,
        }


def clean_filename(raw: str | None) -> str:
    """The last path segment of a client's file name, printable, 1-255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise InvalidInput("the file needs a name", details=[{"field": "file", "message": "missing file name"}])
    if len(name) > 255 or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput("invalid file name", details=[{"field": "file", "message": "1-255 printable characters"}])
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("invalid file name", details=[{"field": "file", "message": "not valid Unicode"}]) from None
    return name


def prepare(
    data: bytes, *, filename: str, media_type: str | None, fields: ManualFields | None, tenant_id: str | None
) -> Prepared:
    """Extract and describe an upload; raises ``InvalidInput``/``UnsupportedMediaType`` for a bad file."""
    doc = extract_document(data, filename=filename, media_type=media_type)
    meta = meta_from_document(doc, tenant_id=tenant_id, filename=filename)
    given = {k: v for k, v in dataclasses.asdict(fields).items() if v is not None} if fields else {}
    if given:
        meta = dataclasses.replace(meta, **given)  # validated again by DocumentMeta
    return Prepared(doc=doc, meta=meta, filename=filename, size=len(data))


def material(
    doc: ExtractedDocument, meta: DocumentMeta, document_id: str, embedder: Embedder
) -> tuple[list[Chunk], npt.NDArray[np.float32]]:
    chunks = chunk_document(doc, meta, document_id=document_id)
    if not chunks:
        raise InvalidInput("the document contains no text to index")
    return chunks, embedder.embed([c.embed_text for c in chunks])


def meta_from_row(row: dict[str, Any]) -> DocumentMeta:
    """The metadata a stored manual was indexed with (rebuilding yields the same chunks)."""
    tenant = row["tenant_id"]
    return DocumentMeta(
        source=row["source"], manufacturer=row["manufacturer"], model=row["model"],
        equipment_type=row["equipment_type"], category=row["category"],
        tenant_id=str(tenant) if tenant is not None else None, updated_at=row["updated_on"],
    )


def original_key(tenant_id: uuid.UUID | None, document_id: uuid.UUID, content_hash: str, fmt: str) -> str:
    # One key per version: the old original stays until the new row is committed.
    name = f"{content_hash[:16]}.{_SUFFIXES[fmt]}"
    if tenant_id is None:
        return global_key("manuals", str(document_id), name)
    return tenant_key(tenant_id, "manuals", str(document_id), name)


def index_key(tenant_id: uuid.UUID | None) -> str:
    if tenant_id is None:
        return global_key("knowledge", "index", "global.kidx")
    return tenant_key(tenant_id, "knowledge", "index.kidx")
