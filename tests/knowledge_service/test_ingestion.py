"""KnowledgeService: ingest, replace, delete, refuse bad files, persist and reload the index, demo data."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ensemble.errors import InvalidInput, NotFound, UnsupportedMediaType
from ensemble.knowledge import sample_documents
from ensemble.knowledge.service import KnowledgeService, ManualFields, ensure_sample_manuals, index_key
from ensemble.server import Services
from tests.knowledge.helpers import encrypted, pdf_of

from .conftest import E7_QUESTION, MANUAL_PDF, new_tenant

NEW_VERSION_PDF = pdf_of(
    [
        [("h1", "Specifications"), ("p", "The Zephyr ZX-90 condenser uses R-454B refrigerant (2026 revision).")],
        [("h1", "Troubleshooting"), ("p", "Code E9 means the inverter board overheated: clean the heat sink.")],
    ],
    title="Zephyr ZX-90 Service Manual",
)


async def _state(services: Services) -> tuple[int, list[str], dict[str, Any]]:
    """What a refused upload must leave untouched: rows, stored objects, index."""
    rows = int(await services.db.fetchval("SELECT count(*) FROM knowledge_documents"))
    keys: list[str] = []
    start: str | None = None
    while True:
        page = await services.objects.list("", start_after=start)
        keys += [o.key for o in page]
        if len(page) < 1000:
            break
        start = page[-1].key
    return rows, keys, services.knowledge.statistics()


async def _top_page(k: KnowledgeService, query: str, tenant: uuid.UUID | None) -> tuple[str, int] | None:
    results = await k.search(query, tenant_id=tenant, k=3)
    return (results[0].citation["source"], results[0].citation["page"]) if results else None


async def test_a_pdf_is_stored_indexed_and_found_on_the_right_page(
    services_factory: Callable[..., Any], kdb_url: str
) -> None:
    async with services_factory(kdb_url) as services:
        k = services.knowledge
        tenant = await new_tenant(services.db)
        out = await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant,
                             fields=ManualFields(manufacturer="Zephyr", model="ZX-90", equipment_type="split system"))
        doc = out.document
        assert out.outcome == "created"
        assert (doc["source"], doc["format"], doc["pages"], doc["tenant_id"]) == ("Zephyr ZX-90 Service Manual", "pdf", 3, tenant)
        assert doc["object_key"].startswith(f"tenants/{tenant}/manuals/{doc['id']}/")
        assert await services.objects.get_bytes(doc["object_key"]) == MANUAL_PDF
        assert await services.objects.head(index_key(tenant))  # the shard blob was written
        assert await _top_page(k, E7_QUESTION, tenant) == ("Zephyr ZX-90 Service Manual", 2)
        results = await k.search("outdoor fan locked", tenant_id=tenant, manufacturer="zephyr", equipment_type="Split System")
        assert results and all(r.metadata["manufacturer"] == "Zephyr" for r in results)
        assert await k.search("outdoor fan locked", tenant_id=tenant, manufacturer="Carrier") == []
        with pytest.raises(InvalidInput):
            await k.search("   ", tenant_id=tenant)


async def test_reingesting_replaces_by_content_hash_and_source(services_factory: Callable[..., Any], kdb_url: str) -> None:
    async with services_factory(kdb_url) as services:
        k = services.knowledge
        tenant = await new_tenant(services.db)
        first = (await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant)).document
        writes = k.blob_writes

        # The same bytes (under any name): nothing changes, nothing is written.
        again = await k.ingest(MANUAL_PDF, filename="copy-of-zx90.pdf", tenant_id=tenant)
        assert again.outcome == "unchanged" and again.document["id"] == first["id"] and k.blob_writes == writes

        # A new version of the manual (same source name, other bytes) replaces the old one's chunks.
        new = await k.ingest(NEW_VERSION_PDF, filename="zx90-2026.pdf", tenant_id=tenant)
        assert new.outcome == "replaced" and new.document["id"] == first["id"] and new.document["version"] == 2
        assert new.document["pages"] == 2 and new.document["content_hash"] != first["content_hash"]
        assert await _top_page(k, "inverter board overheated E9", tenant) == ("Zephyr ZX-90 Service Manual", 2)
        texts = [r.text for r in await k.search("E7 outdoor fan motor locked", tenant_id=tenant, k=10)]
        assert not any("E7" in t for t in texts), "the old version's chunks are gone"
        assert k.kb.shard(str(tenant)).document_chunk_count(str(first["id"])) == new.document["chunks"]
        # The old original is deleted, the new one stored.
        with pytest.raises(NotFound):
            await services.objects.head(first["object_key"])
        assert await services.objects.get_bytes(new.document["object_key"]) == NEW_VERSION_PDF

        # The same bytes described differently: re-indexed with the new description, same document.
        described = await k.ingest(NEW_VERSION_PDF, filename="zx90-2026.pdf", tenant_id=tenant,
                                   fields=ManualFields(manufacturer="Zephyr"))
        assert described.outcome == "replaced" and described.document["version"] == 3
        assert await services.objects.get_bytes(described.document["object_key"]) == NEW_VERSION_PDF
        results = await k.search("inverter board", tenant_id=tenant, manufacturer="Zephyr")
        assert results and results[0].metadata["manufacturer"] == "Zephyr"


async def test_deleting_removes_row_original_and_chunks(services_factory: Callable[..., Any], kdb_url: str) -> None:
    async with services_factory(kdb_url) as services:
        k = services.knowledge
        tenant = await new_tenant(services.db)
        doc = (await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant)).document
        other = await new_tenant(services.db)
        with pytest.raises(NotFound):  # another tenant's scope does not have it
            await k.delete_document(doc["id"], tenant_id=other)
        await k.delete_document(doc["id"], tenant_id=tenant)
        assert await services.db.fetchval("SELECT count(*) FROM knowledge_documents WHERE id = $1", doc["id"]) == 0
        for key in (doc["object_key"], index_key(tenant)):  # the last manual took the blob with it
            with pytest.raises(NotFound):
                await services.objects.head(key)
        assert await k.search(E7_QUESTION, tenant_id=tenant) == []
        with pytest.raises(NotFound):
            await k.delete_document(doc["id"], tenant_id=tenant)


ENCRYPTED = encrypted(MANUAL_PDF, user_password="secret")
BAD_FILES = [
    ("locked.pdf", ENCRYPTED, InvalidInput, "encrypted"),
    ("junk.pdf", b"%PDF-1.4\n not a pdf at all \n%%EOF", InvalidInput, "PDF"),
    ("scan.pdf", pdf_of([[], []]), InvalidInput, "no extractable text"),
    ("empty.md", b"", InvalidInput, "empty"),
    ("blank.txt", b"   \n\n\t  ", InvalidInput, "no text"),
    ("binary.txt", bytes(range(256)) * 8, InvalidInput, "UTF-8"),
    ("manual.docx", b"PK\x03\x04 word document", UnsupportedMediaType, ".docx"),
]


async def test_bad_files_are_refused_clearly_and_change_nothing(
    services_factory: Callable[..., Any], fresh_db_url: str
) -> None:
    async with services_factory(fresh_db_url) as services:
        k = services.knowledge
        tenant = await new_tenant(services.db)
        await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant)
        await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=None)
        before = await _state(services)
        for name, data, error, needle in BAD_FILES:
            for scope in (tenant, None):
                with pytest.raises(error) as info:
                    await k.ingest(data, filename=name, tenant_id=scope)
                assert needle in info.value.message, (name, info.value.message)
                assert await _state(services) == before, f"{name} changed something"
        # A bad description is refused before anything is written too.
        with pytest.raises(InvalidInput, match="category"):
            await k.ingest(NEW_VERSION_PDF, filename="x.pdf", tenant_id=tenant, fields=ManualFields(category="recipes"))
        assert await _state(services) == before


async def test_the_index_survives_a_restart_without_rebuilding(
    services_factory: Callable[..., Any], fresh_db_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with services_factory(fresh_db_url, data_dir=data_dir) as services:
        tenant = await new_tenant(services.db)
        await services.knowledge.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant)
        await services.knowledge.ingest(sample_documents()[0].data, filename=sample_documents()[0].filename, tenant_id=None)
    async with services_factory(fresh_db_url, data_dir=data_dir) as services:
        k = services.knowledge
        assert await _top_page(k, E7_QUESTION, tenant) == ("Zephyr ZX-90 Service Manual", 2)
        assert (await k.search("24ACC6 compressor", tenant_id=None))[0].citation["source"].startswith("Carrier")
        stats = k.statistics()
        assert stats["reindexed_documents"] == 0 and stats["blob_writes"] == 0, "loaded from the blobs, not rebuilt"
        assert stats["global_chunks"] > 0 and stats["tenant_chunks"] > 0


async def test_loading_reconciles_the_index_with_the_documents(
    services_factory: Callable[..., Any], fresh_db_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with services_factory(fresh_db_url, data_dir=data_dir) as services:
        t1, t2 = await new_tenant(services.db), await new_tenant(services.db)
        await services.knowledge.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=t1)
        kept = (await services.knowledge.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=t2)).document
        gone = (await services.knowledge.ingest(NEW_VERSION_PDF, filename="v2.pdf", tenant_id=t2,
                                                fields=ManualFields(source="Other manual"))).document
        # Crashes between the steps of ingestion, simulated: t1's blob is lost, t2's blob
        # still holds a manual whose row is gone.
        await services.objects.put(index_key(t1), b"damaged", content_type="application/octet-stream")
        await services.db.execute("DELETE FROM knowledge_documents WHERE id = $1", gone["id"])
    async with services_factory(fresh_db_url, data_dir=data_dir) as services:
        k = services.knowledge
        assert await _top_page(k, E7_QUESTION, t1) == ("Zephyr ZX-90 Service Manual", 2)  # rebuilt from the original
        assert k.statistics()["reindexed_documents"] == 1
        await k.ensure_loaded(t2)  # tenant shards load on first use
        assert k.kb.shard(str(t2)).document_ids() == [str(kept["id"])]
        results = await k.search("inverter board overheated E9", tenant_id=t2, k=10)
        assert all(r.citation["document_id"] != str(gone["id"]) for r in results)


async def test_sample_manuals_are_ingested_once_as_global_manuals(
    services_factory: Callable[..., Any], fresh_db_url: str
) -> None:
    async with services_factory(fresh_db_url) as services:
        k = services.knowledge
        first = await ensure_sample_manuals(k)
        assert {o.outcome for o in first} == {"created"} and len(first) == len(sample_documents())
        assert all(o.document["tenant_id"] is None for o in first)
        writes = k.blob_writes
        second = await ensure_sample_manuals(k)
        assert {o.outcome for o in second} == {"unchanged"} and k.blob_writes == writes
        tenant = await new_tenant(services.db)
        results = await k.search("Daikin DX16TC error code", tenant_id=tenant, k=3)
        assert results and results[0].metadata["tenant_id"] is None
        assert any(r.citation["source"].startswith("Daikin") for r in results)


async def test_tenants_see_global_manuals_and_their_own_only(services_factory: Callable[..., Any], fresh_db_url: str) -> None:
    async with services_factory(fresh_db_url) as services:
        k = services.knowledge
        t1, t2 = await new_tenant(services.db), await new_tenant(services.db)
        private = (await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=t1)).document
        glob = (await k.ingest(sample_documents()[0].data, filename=sample_documents()[0].filename, tenant_id=None)).document
        assert await _top_page(k, E7_QUESTION, t1) == ("Zephyr ZX-90 Service Manual", 2)
        for viewer in (t2, None):
            results = await k.search("Zephyr ZX-90 code E7 outdoor fan motor locked", tenant_id=viewer, k=20)
            assert all(r.citation["document_id"] != str(private["id"]) for r in results)
        assert (await k.get_document(glob["id"], viewer=t2))["source"] == glob["source"]
        with pytest.raises(NotFound):
            await k.get_document(private["id"], viewer=t2)
        listing = await k.list_documents(viewer=t2)
        assert [d["id"] for d in listing.items] == [glob["id"]]
        mine = await k.list_documents(viewer=t1, scope="tenant")
        assert [d["id"] for d in mine.items] == [private["id"]]


async def test_embedding_and_search_run_off_the_event_loop(services_factory: Callable[..., Any], kdb_url: str) -> None:
    import threading

    async with services_factory(kdb_url) as services:
        k = services.knowledge
        loop_thread = threading.current_thread()
        threads: list[threading.Thread] = []
        embed, search = k.kb.embedder.embed, k.kb.search

        def spy(fn: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                threads.append(threading.current_thread())
                return fn(*args, **kwargs)
            return wrapper

        k.kb.embedder.embed = spy(embed)  # type: ignore[method-assign]
        k.kb.search = spy(search)  # type: ignore[method-assign]
        try:
            tenant = await new_tenant(services.db)
            await k.ingest(MANUAL_PDF, filename="zx90.pdf", tenant_id=tenant)
            await k.search(E7_QUESTION, tenant_id=tenant)
        finally:
            k.kb.embedder.embed = embed  # type: ignore[method-assign]
            k.kb.search = search  # type: ignore[method-assign]
        assert len(threads) >= 3 and loop_thread not in threads
