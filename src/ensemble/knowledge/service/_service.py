"""KnowledgeService: the server's manuals — documents table, originals, and the searchable index.

Theory of operation
-------------------
Three stores hold a manual, and they cannot change in one transaction:

* the ``knowledge_documents`` row (Postgres) is **the truth**;
* the original file (object store, one key per version);
* the index shard of its scope (in memory; a blob per scope in the object
  store is a *cache* of it, written after changes).

Writes to one scope are serialised by a per-scope ``trio.Lock`` and ordered
so that every crash leaves a state the next load repairs:

1. ``prepare`` (extract + validate) before anything is written: a bad file
   changes nothing;
2. put the original under a new key;
3. commit the row (on failure, delete the new original);
4. swap the chunks in the in-memory shard (``replace_document``: readers
   see the old version or the new one);
5. write the shard blob, then delete the previous original.

Loading a scope (the global one at start, a tenant's on its first use)
attaches its blob and **reconciles** it with the rows: chunks of documents
that have no row are removed, documents whose row is missing from the blob
(or has another content hash) are re-indexed from their original.  So a
crash between 3 and 5, a lost blob, or a blob built by another embedder
all heal at the next start, without ever rebuilding the shards from scratch.

CPU work (extraction, embedding, FAISS, serialisation) runs in
``trio.to_thread``; the event loop only awaits it.

Several server processes each hold their own copy of the index; a change
made by one (or by the CLI) reaches the others when they next load the
scope (restart).  Cross-node invalidation is not implemented yet.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import trio

from ensemble.errors import ConfigError, EnsembleError, InvalidInput, NotFound
from ensemble.log import get_logger
from ensemble.persistence.repos import Actor, Page
from ensemble.persistence.repos import knowledge as repo

from .._base import KnowledgeBase
from .._embedding import default_embedder
from .._index import KnowledgeIndex
from .._types import SearchFilters, SearchResult
from ._documents import INDEX_MEDIA_TYPE, ManualFields, index_key, material, meta_from_row, original_key, prepare

if TYPE_CHECKING:
    from ensemble.config import Settings
    from ensemble.knowledge.assistant import Assistant
    from ensemble.persistence.database import Database
    from ensemble.persistence.objects import ObjectStore

__all__ = ["KnowledgeService", "IngestOutcome", "Scope", "open_knowledge_service"]

log = get_logger("ensemble.knowledge")

Scope = uuid.UUID | None  # None = the global manuals


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    document: dict[str, Any]
    outcome: Literal["created", "replaced", "unchanged"]


def _key(scope: Scope) -> str | None:
    """The KnowledgeBase's shard key (tenant ids are strings in chunks and filters)."""
    return str(scope) if scope is not None else None


class KnowledgeService:
    def __init__(self, settings: "Settings", db: "Database", objects: "ObjectStore", kb: KnowledgeBase) -> None:
        self.settings = settings
        self.db = db
        self.objects = objects
        self.kb = kb
        # Set by open_knowledge_service: what diagnostic sessions ask.
        self.assistant: Assistant | None = None
        self._locks: dict[Scope, trio.Lock] = {}
        self._loaded: set[Scope] = set()
        self._dirty: set[Scope] = set()
        self.reindexed_documents = 0  # re-indexed from originals while loading (a healthy start has 0)
        self.blob_writes = 0

    # -- scopes -----------------------------------------------------------------
    def _lock(self, scope: Scope) -> trio.Lock:
        lock = self._locks.get(scope)
        if lock is None:
            lock = self._locks[scope] = trio.Lock()
        return lock

    async def ensure_loaded(self, scope: Scope) -> None:
        if scope in self._loaded:
            return
        async with self._lock(scope):
            if scope not in self._loaded:
                await self._load(scope)

    async def preload(self) -> None:
        """Load the global shard (start-up); a tenant's shard loads on the tenant's first use.

        Why tenants lazily: start-up time and memory then do not grow with
        the number of tenants, and a tenant that asks nothing costs nothing.
        The first search, question or upload of a tenant after a restart
        pays one blob read (and its reconciliation).
        """
        await self.ensure_loaded(None)

    async def _load(self, scope: Scope) -> None:
        rows = await self.db.run(repo.manifest, scope)
        index = await self._read_blob(scope)
        fresh = KnowledgeIndex(self.kb.embedder.dim, embedder_name=self.kb.embedder.name)
        try:
            # attach() checks every chunk's tenant: O(chunks), so off the loop.
            await trio.to_thread.run_sync(self.kb.attach, _key(scope), index or fresh)
        except (ConfigError, InvalidInput) as exc:
            log.warning("knowledge_index_refused", scope=_key(scope), error=exc.message)
            self.kb.attach(_key(scope), fresh)
        changed = await self._reconcile(scope, rows)
        self._loaded.add(scope)
        if changed:
            self._dirty.add(scope)
            await self._persist_or_keep_dirty(scope)

    async def _read_blob(self, scope: Scope) -> KnowledgeIndex | None:
        try:
            data = await self.objects.get_bytes(index_key(scope))
        except NotFound:
            return None
        try:
            return await trio.to_thread.run_sync(
                partial(KnowledgeIndex.from_bytes, data, embedder_name=self.kb.embedder.name)
            )
        except (ConfigError, InvalidInput) as exc:
            # Another embedder, or a damaged blob: rebuilt from the originals below.
            log.warning("knowledge_index_unreadable", scope=_key(scope), error=exc.message)
            return None

    async def _reconcile(self, scope: Scope, rows: list[dict[str, Any]]) -> bool:
        shard = self.kb.shard(_key(scope))
        expected = {str(r["id"]): r for r in rows}
        changed = False
        for doc_id in shard.document_ids():
            if doc_id not in expected:
                await trio.to_thread.run_sync(shard.remove_document, doc_id)
                changed = True
        for doc_id, row in expected.items():
            if shard.document_hash(doc_id) != row["content_hash"]:
                changed = await self._reindex(scope, row) or changed
        return changed

    async def _reindex(self, scope: Scope, row: dict[str, Any]) -> bool:
        """Index a stored manual again from its original; False if that is impossible now."""
        doc_id = str(row["id"])
        try:
            data = await self.objects.get_bytes(row["object_key"])
            prepared = await trio.to_thread.run_sync(
                partial(prepare, data, filename=row["filename"], media_type=row["media_type"], fields=None,
                        tenant_id=_key(scope))
            )
            chunks, vectors = await trio.to_thread.run_sync(
                material, prepared.doc, meta_from_row(row), doc_id, self.kb.embedder
            )
            await trio.to_thread.run_sync(self.kb.shard(_key(scope)).replace_document, doc_id, chunks, vectors)
        except EnsembleError as exc:
            # The row stays (it is the truth); the manual is unsearchable until re-ingested.
            log.warning("knowledge_reindex_failed", document_id=doc_id, scope=_key(scope), error=exc.message)
            return False
        self.reindexed_documents += 1
        return True

    async def _persist(self, scope: Scope) -> None:
        """Write the scope's shard blob (delete it when the scope has no manuals left)."""
        shard = self.kb.shard(_key(scope))
        key = index_key(scope)
        if len(shard) == 0:
            await self.objects.delete(key)
        else:
            blob = await trio.to_thread.run_sync(shard.to_bytes)
            await self.objects.put(key, blob, content_type=INDEX_MEDIA_TYPE)
            self.blob_writes += 1
        self._dirty.discard(scope)

    async def flush(self) -> None:
        """Write every shard changed since its last write (batch imports, shutdown)."""
        for scope in list(self._dirty):
            async with self._lock(scope):
                if scope in self._dirty:
                    await self._persist(scope)

    async def _persist_or_keep_dirty(self, scope: Scope) -> None:
        # The change is committed and searchable; a failed blob write only
        # means the next start reconciles it from the rows.
        try:
            await self._persist(scope)
        except EnsembleError as exc:
            log.error("knowledge_index_write_failed", scope=_key(scope), error=exc.message)

    # -- documents ----------------------------------------------------------------
    async def ingest(
        self,
        data: bytes,
        *,
        filename: str,
        tenant_id: Scope,
        media_type: str | None = None,
        fields: ManualFields | None = None,
        actor: Actor | None = None,
        persist: bool = True,
    ) -> IngestOutcome:
        """Add a manual to a scope, replace the manual of the same source name, or do nothing for the same bytes."""
        prepared = await trio.to_thread.run_sync(
            partial(prepare, data, filename=filename, media_type=media_type, fields=fields, tenant_id=_key(tenant_id))
        )
        digest = prepared.doc.content_hash
        await self.ensure_loaded(tenant_id)
        async with self._lock(tenant_id):
            same, previous = await self.db.run(repo.find_for_ingest, tenant_id, digest, prepared.meta.source)
            shard = self.kb.shard(_key(tenant_id))
            if same is not None and _same_description(same, prepared.row_values(same["object_key"], same["chunks"])):
                if shard.document_hash(str(same["id"])) != digest and await self._reindex(tenant_id, same):
                    self._dirty.add(tenant_id)  # its reindex had failed at load; the upload healed it
                    if persist:
                        await self._persist_or_keep_dirty(tenant_id)
                return IngestOutcome(same, "unchanged")
            if same is not None:
                previous = same  # the same bytes described differently: re-index with the new description
            doc_id = previous["id"] if previous is not None else uuid.uuid4()
            chunks, vectors = await trio.to_thread.run_sync(
                material, prepared.doc, prepared.meta, str(doc_id), self.kb.embedder
            )
            key = original_key(tenant_id, doc_id, digest, prepared.doc.format)
            await self.objects.put(
                key, data, content_type=prepared.media_type,
                metadata={"document-id": str(doc_id), "content-hash": digest},
            )
            try:
                row = await self.db.run(partial(
                    repo.save_document, actor=actor, tenant_id=tenant_id, document_id=doc_id,
                    values=prepared.row_values(key, len(chunks)), replacing=previous is not None,
                ))
            except BaseException:
                if previous is None or previous["object_key"] != key:
                    with trio.CancelScope(shield=True):
                        await self._delete_object(key)
                raise
            try:
                await trio.to_thread.run_sync(shard.replace_document, str(doc_id), chunks, vectors)
            except BaseException:
                # The row is committed but not indexed: reload (and so reconcile) the scope on its next use.
                self._loaded.discard(tenant_id)
                raise
            self._dirty.add(tenant_id)
            if persist:
                await self._persist_or_keep_dirty(tenant_id)
            if previous is not None and previous["object_key"] != key:
                await self._delete_object(previous["object_key"])
        log.info("knowledge_ingested", document_id=str(doc_id), scope=_key(tenant_id), chunks=len(chunks),
                 replaced=previous is not None)
        return IngestOutcome(row, "replaced" if previous is not None else "created")

    async def delete_document(self, document_id: uuid.UUID, *, tenant_id: Scope, actor: Actor | None = None) -> dict[str, Any]:
        """Remove a manual of the scope: its row, its chunks and its original."""
        await self.ensure_loaded(tenant_id)
        async with self._lock(tenant_id):
            row = await self.db.run(repo.delete_document, actor, tenant_id, document_id)
            await trio.to_thread.run_sync(self.kb.shard(_key(tenant_id)).remove_document, str(document_id))
            self._dirty.add(tenant_id)
            await self._persist_or_keep_dirty(tenant_id)
            await self._delete_object(row["object_key"])
        log.info("knowledge_deleted", document_id=str(document_id), scope=_key(tenant_id))
        return row

    async def _delete_object(self, key: str) -> None:
        try:
            await self.objects.delete(key)
        except EnsembleError as exc:  # an orphan original is invisible; a failed request would not be
            log.warning("knowledge_original_not_deleted", key=key, error=exc.message)

    async def get_document(self, document_id: uuid.UUID, *, viewer: Scope) -> dict[str, Any]:
        return await self.db.run(repo.get_visible, viewer, document_id)

    async def list_documents(self, *, viewer: Scope, **filters: Any) -> Page:
        return await self.db.run(partial(repo.list_visible, viewer=viewer, **filters))

    # -- search -------------------------------------------------------------------
    async def search(
        self,
        query: str,
        *,
        tenant_id: Scope,
        k: int = 5,
        manufacturer: str | None = None,
        model: str | None = None,
        equipment_type: str | None = None,
        category: str | None = None,
    ) -> list[SearchResult]:
        """Hybrid search of the global manuals and ``tenant_id``'s own (never another tenant's)."""
        if not query.strip():
            raise InvalidInput("the question is empty", details=[{"field": "q", "message": "empty"}])
        for scope in (None, tenant_id) if tenant_id is not None else (None,):
            await self.ensure_loaded(scope)
        filters = SearchFilters(
            manufacturer=manufacturer, model=model, equipment_type=equipment_type, category=category,
            tenant_id=_key(tenant_id),
        )
        return await trio.to_thread.run_sync(partial(self.kb.search, query, k=k, filters=filters))

    def statistics(self) -> dict[str, Any]:
        shards = self.kb.shards()
        return {
            "shards": len(shards),
            "global_chunks": sum(len(index) for scope, index in shards if scope is None),
            "tenant_chunks": sum(len(index) for scope, index in shards if scope is not None),
            "documents": sum(len(index.document_ids()) for _, index in shards),
            "loaded_scopes": len(self._loaded),
            "dirty_scopes": len(self._dirty),
            "reindexed_documents": self.reindexed_documents,
            "blob_writes": self.blob_writes,
            "embedder": self.kb.embedder.name,
        }


@asynccontextmanager
async def open_knowledge_service(
    settings: "Settings",
    db: "Database",
    objects: "ObjectStore",
    *,
    preload: bool = True,
    http_client: Any = None,
) -> AsyncIterator[KnowledgeService]:
    """The service with its shards loaded and its assistant ready; flushes changed shards on exit.

    ``preload=False`` loads scopes on first use (the CLI touches one scope).
    ``http_client`` replaces the Anthropic SDK's HTTP client (tests).
    """
    from ._assistant import open_assistant

    embedder = await trio.to_thread.run_sync(default_embedder, settings.knowledge_embedding_model)
    service = KnowledgeService(settings, db, objects, KnowledgeBase(embedder))
    if preload:
        await service.preload()
    try:
        async with open_assistant(service, http_client=http_client) as assistant:
            service.assistant = assistant
            yield service
    finally:
        with trio.CancelScope(shield=True):
            try:
                await service.flush()
            except EnsembleError as exc:
                log.error("knowledge_flush_failed", error=exc.message)


_DESCRIPTION = ("source", "manufacturer", "model", "equipment_type", "category", "updated_on")


def _same_description(row: dict[str, Any], values: dict[str, Any]) -> bool:
    return all(row[name] == values[name] for name in _DESCRIPTION)
