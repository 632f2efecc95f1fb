"""The bundled sample manuals as global manuals, for the demo mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._samples import sample_documents

if TYPE_CHECKING:
    from ._service import IngestOutcome, KnowledgeService

__all__ = ["ensure_sample_manuals"]


async def ensure_sample_manuals(service: KnowledgeService) -> list[IngestOutcome]:
    """Ingest every sample manual as a global manual, once.

    Idempotent by content hash: a second call (every demo start) finds each
    file unchanged and writes nothing; an edited sample replaces its older
    version (same source name).  The global shard is written once at the end.
    """
    outcomes = [
        await service.ingest(doc.data, filename=doc.filename, media_type=doc.media_type, tenant_id=None, persist=False)
        for doc in sample_documents()
    ]
    await service.flush()
    return outcomes
