"""Equipment manuals as a searchable knowledge base (the RAG half of the assistant).

Pipeline: ``extract_document`` (PDF / Markdown / text -> pages) ->
``chunk_document`` (page-aware chunks with metadata) -> an ``Embedder`` ->
``KnowledgeIndex`` (FAISS + BM25, filtered hybrid search) inside a
``KnowledgeBase`` (global shard + one shard per tenant).  ``answer_offline``
quotes and cites passages when no language model is configured.

All of it is synchronous CPU work; callers in trio use ``trio.to_thread``.
"""

from ._answer import Answer, NumberedCitation, answer_offline, citations_for, format_context
from ._base import IngestReport, KnowledgeBase, meta_from_document
from ._chunking import chunk_document, chunk_id, infer_category
from ._embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder, default_embedder
from ._extract import content_hash, detect_format, extract_document
from ._index import KnowledgeIndex
from ._samples import SampleDocument, load_samples, sample_documents
from ._search import Fused, fuse, hybrid_search, ranked_lists
from ._text import analyze
from ._types import (
    CATEGORIES,
    Candidates,
    Chunk,
    Citation,
    DocumentFormat,
    DocumentMeta,
    ExtractedDocument,
    Page,
    SearchFilters,
    SearchResult,
)

__all__ = [
    "CATEGORIES",
    "Answer",
    "Candidates",
    "Chunk",
    "Citation",
    "DocumentFormat",
    "DocumentMeta",
    "Embedder",
    "ExtractedDocument",
    "Fused",
    "HashingEmbedder",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeIndex",
    "NumberedCitation",
    "Page",
    "SampleDocument",
    "SearchFilters",
    "SearchResult",
    "SentenceTransformerEmbedder",
    "analyze",
    "answer_offline",
    "chunk_document",
    "chunk_id",
    "citations_for",
    "content_hash",
    "default_embedder",
    "detect_format",
    "extract_document",
    "format_context",
    "fuse",
    "hybrid_search",
    "infer_category",
    "load_samples",
    "meta_from_document",
    "ranked_lists",
    "sample_documents",
]
