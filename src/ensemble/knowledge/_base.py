"""KnowledgeBase: one global shard plus one shard per tenant.

Why shards rather than one index with a tenant column:

* isolation is structural: a tenant's search only ever touches the global
  shard and its own; another tenant's chunks are not in memory it reads, and
  do not even influence its BM25 statistics;
* persistence follows ownership: a tenant uploading a manual rewrites its own
  small blob in object storage, not the 100k-chunk global one;
* deleting a tenant is dropping a shard.

A search over global + tenant uses the union's BM25 statistics and merges
the shards' lists before fusing (see ._search), so the tenant gets the
ranking of one combined index (up to per-shard length normalisation).

Everything here is synchronous CPU work: run it in ``trio.to_thread``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from pathlib import PurePath

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError, InvalidInput, NotFound
from ._chunking import chunk_document
from ._embedding import Embedder, HashingEmbedder
from ._extract import extract_document
from ._index import KnowledgeIndex
from ._search import hybrid_search
from ._types import Chunk, DocumentFormat, DocumentMeta, ExtractedDocument, SearchFilters, SearchResult

__all__ = ["IngestReport", "KnowledgeBase", "meta_from_document"]

_META_FIELDS = tuple(f.name for f in fields(DocumentMeta) if f.name != "tenant_id")


@dataclass(frozen=True, slots=True)
class IngestReport:
    document_id: str
    content_hash: str
    format: DocumentFormat
    pages: int
    chunks: int
    replaced: bool  # an older version of the document was removed
    unchanged: bool  # the same bytes were already indexed: nothing was done


def meta_from_document(
    doc: ExtractedDocument,
    *,
    tenant_id: str | None,
    meta: DocumentMeta | None = None,
    filename: str | None = None,
) -> DocumentMeta:
    """The uploader's ``meta`` completed by what the file declares about itself.

    Explicit fields win over front matter; the source name falls back to the
    PDF title, then the file name.  ``tenant_id`` always comes from the caller
    (the authenticated tenant): a file cannot declare itself global.
    """
    if meta is not None and meta.tenant_id not in (None, tenant_id):
        raise InvalidInput("the document's tenant_id does not match the uploading tenant")
    values: dict[str, str | None] = {}
    for name in _META_FIELDS:
        explicit = getattr(meta, name) if meta is not None else None
        values[name] = explicit if explicit is not None else doc.metadata.get(name)
    if not values["source"]:
        values["source"] = doc.metadata.get("title") or (PurePath(filename).stem if filename else None)
    if not values["source"]:
        raise InvalidInput("a document needs a source name: pass one, or a filename")
    return DocumentMeta(tenant_id=tenant_id, **values)  # type: ignore[arg-type]


class KnowledgeBase:
    """The searchable manuals of the whole server.  See the module doc."""

    def __init__(self, embedder: Embedder | None = None, *, ivf_threshold: int | None = None) -> None:
        self.embedder: Embedder = embedder or HashingEmbedder()
        self._ivf_threshold = ivf_threshold
        self._shards: dict[str | None, KnowledgeIndex] = {}
        self._lock = threading.Lock()

    # -- shards -----------------------------------------------------------
    def _new_shard(self) -> KnowledgeIndex:
        kwargs = {} if self._ivf_threshold is None else {"ivf_threshold": self._ivf_threshold}
        return KnowledgeIndex(self.embedder.dim, embedder_name=self.embedder.name, **kwargs)

    def shard(self, tenant_id: str | None) -> KnowledgeIndex:
        """The shard of ``tenant_id`` (``None`` = global), created on first use."""
        with self._lock:
            index = self._shards.get(tenant_id)
            if index is None:
                index = self._shards[tenant_id] = self._new_shard()
            return index

    def shards(self) -> list[tuple[str | None, KnowledgeIndex]]:
        with self._lock:
            return list(self._shards.items())

    def attach(self, tenant_id: str | None, index: KnowledgeIndex) -> None:
        """Install a shard loaded from storage (``KnowledgeIndex.from_bytes``)."""
        if index.embedder_name != self.embedder.name or index.dim != self.embedder.dim:
            raise ConfigError(
                f"shard {tenant_id!r} was built with {index.embedder_name!r}, "
                f"but the knowledge base embeds with {self.embedder.name!r}"
            )
        foreign = index.tenants() - {tenant_id}
        if foreign:
            raise InvalidInput(f"shard {tenant_id!r} holds chunks of other tenants: {sorted(map(str, foreign))}")
        with self._lock:
            self._shards[tenant_id] = index

    def drop_tenant(self, tenant_id: str) -> None:
        with self._lock:
            self._shards.pop(tenant_id, None)

    def to_blobs(self) -> dict[str | None, bytes]:
        """Every shard serialised, keyed by tenant (``None`` = global)."""
        return {tenant: index.to_bytes() for tenant, index in self.shards()}

    # -- documents --------------------------------------------------------
    def ingest(
        self,
        data: bytes,
        *,
        tenant_id: str | None,
        filename: str | None = None,
        media_type: str | None = None,
        meta: DocumentMeta | None = None,
        document_id: str | None = None,
    ) -> IngestReport:
        """Extract, chunk, embed and index one manual; replaces an older version.

        ``document_id`` names the manual across versions (defaults to the
        content hash).  Re-ingesting identical bytes under the same id is a
        no-op, so retries are safe.
        """
        doc = extract_document(data, filename=filename, media_type=media_type)
        full_meta = meta_from_document(doc, tenant_id=tenant_id, meta=meta, filename=filename)
        doc_id = document_id or doc.content_hash
        with self._lock:
            existing = self._shards.get(tenant_id)
        previous = existing.document_hash(doc_id) if existing is not None else None
        if existing is not None and previous == doc.content_hash:
            count = existing.document_chunk_count(doc_id)
            return IngestReport(doc_id, doc.content_hash, doc.format, len(doc.pages), count, False, True)
        chunks = chunk_document(doc, full_meta, document_id=doc_id)
        vectors = self.embedder.embed([c.embed_text for c in chunks])
        # The shard is created only now: a refused upload leaves no trace.
        replaced = self.shard(tenant_id).replace_document(doc_id, chunks, vectors)
        return IngestReport(doc_id, doc.content_hash, doc.format, len(doc.pages), len(chunks), replaced > 0, False)

    def add_chunks(self, chunks: list[Chunk], vectors: npt.NDArray[np.float32] | None = None) -> None:
        """Index pre-chunked material, all of one tenant (e.g. a bulk import)."""
        tenants = {c.tenant_id for c in chunks}
        if len(tenants) > 1:
            raise InvalidInput("add_chunks takes the chunks of one tenant at a time")
        if not chunks:
            return
        if vectors is None:
            vectors = self.embedder.embed([c.embed_text for c in chunks])
        self.shard(tenants.pop()).add(chunks, vectors)

    def remove_document(self, document_id: str, *, tenant_id: str | None) -> int:
        """Remove a manual from the tenant's shard (``None`` = global)."""
        with self._lock:
            shard = self._shards.get(tenant_id)
        removed = shard.remove_document(document_id) if shard is not None else 0
        if not removed:
            raise NotFound(f"no document {document_id!r} in the knowledge base")
        return removed

    def visible_shards(self, tenant_id: str | None) -> list[KnowledgeIndex]:
        with self._lock:
            keys: list[str | None] = [None] if tenant_id is None else [None, tenant_id]
            return [self._shards[key] for key in keys if key in self._shards]

    # -- search -----------------------------------------------------------
    def search(self, query: str, *, k: int = 5, filters: SearchFilters | None = None) -> list[SearchResult]:
        """Embed ``query`` and search what ``filters.tenant_id`` may see."""
        vec = self.embedder.embed([query])[0]
        return self.search_vector(vec, query, k=k, filters=filters)

    def search_vector(
        self,
        query_vec: npt.NDArray[np.float32],
        query_text: str,
        *,
        k: int = 5,
        filters: SearchFilters | None = None,
    ) -> list[SearchResult]:
        filters = filters or SearchFilters()
        shards = self.visible_shards(filters.tenant_id)
        if not shards:
            if not query_text.strip():
                raise InvalidInput("the question is empty")
            return []
        return hybrid_search(shards, query_vec, query_text, k=k, filters=filters)
