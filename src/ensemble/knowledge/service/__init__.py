"""The knowledge base as a server service: manuals in Postgres and the object store, the index, the assistant.

``open_knowledge_service(settings, db, objects)`` loads the index shards
(global + per tenant) from the object store, reconciles them with the
``knowledge_documents`` rows, and opens the assistant that diagnostic
sessions ask (Claude when ``ANTHROPIC_API_KEY`` is set, quoted excerpts
otherwise).  The server exposes it as ``services.knowledge``.
"""

from ._assistant import KnowledgeAssistant, open_assistant
from ._documents import ManualFields, clean_filename, index_key, original_key
from ._samples import ensure_sample_manuals
from ._service import IngestOutcome, KnowledgeService, Scope, open_knowledge_service
from ._usage import UsageReport, usage_report

__all__ = [
    "IngestOutcome",
    "KnowledgeAssistant",
    "KnowledgeService",
    "ManualFields",
    "Scope",
    "UsageReport",
    "clean_filename",
    "ensure_sample_manuals",
    "index_key",
    "open_assistant",
    "open_knowledge_service",
    "original_key",
    "usage_report",
]
