"""Hybrid search over one or more shards: dense + BM25, fused by rank.

Why reciprocal rank fusion rather than a weighted sum of scores: cosine
similarities of the hashing embedder live around 0.1-0.4 and BM25 scores are
unbounded and query-dependent, so any fixed weighting of raw scores is right
for some queries and wrong for others.  RRF only looks at ranks: a chunk that
both rankers place high wins; a chunk that only BM25 finds (the page with
"24ACC6" on it) still lands near the top when BM25 puts it first.

A third vote comes from BM25 over the query's rare identifiers only (model
numbers, error codes; see :func:`fuse`).

Several shards (global + the tenant's) are searched with the *union's* BM25
IDF statistics, their dense lists merged by cosine and their lexical lists by
BM25, then fused once, as if they were a single index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._lexical import LexicalStats, resolve_query_terms
from ._text import is_model_token
from ._types import Candidates, Chunk, SearchFilters, SearchResult

if TYPE_CHECKING:
    from ._index import KnowledgeIndex

__all__ = ["MAX_K", "Fused", "fuse", "hybrid_search", "ranked_lists"]

MAX_K: Final = 50
RRF_K: Final = 60
# Equal weights, the RRF default: on bench/retrieval.py other weightings
# moved recall@1 by a question or two either way, i.e. by noise.
DENSE_WEIGHT: Final = 1.0
LEXICAL_WEIGHT: Final = 1.0
IDENTIFIER_WEIGHT: Final = 1.0
# An identifier votes if it is on at most max(this, 1% of the chunks).
IDENTIFIER_MIN_DF: Final = 3


class Fused(NamedTuple):
    chunk: Chunk
    score: float
    dense_score: float | None
    lexical_score: float | None
    identifier_score: float | None


Ranked = Sequence[tuple[Chunk, float]]  # read-only view of ._types.Ranked


def fuse(
    dense: Ranked,
    lexical: Ranked,
    identifiers: Ranked = (),
    *,
    dense_weight: float = DENSE_WEIGHT,
    lexical_weight: float = LEXICAL_WEIGHT,
    identifier_weight: float = IDENTIFIER_WEIGHT,
    rrf_k: int = RRF_K,
) -> list[Fused]:
    """Weighted RRF of the ranked lists, best first.

    ``identifiers`` is BM25 over the model numbers and codes ("gsx140361",
    "e4") that the query and a chunk's own text share: a third vote for the
    chunks that name them.  Without it, a page that only BM25 finds (a spec
    table row holding "GSX140361") loses to pages both rankers like for the
    rest of the question ("run capacitor"), because RRF rewards agreement.
    The manual's own model, which the context prefix puts on every chunk,
    does not count here, so it cannot reorder the chunks of one manual.
    """
    lists = ((dense_weight, dense), (lexical_weight, lexical), (identifier_weight, identifiers))
    chunks: dict[str, Chunk] = {}
    fused: dict[str, float] = {}
    scores: tuple[dict[str, float], dict[str, float], dict[str, float]] = ({}, {}, {})
    for (weight, ranked), own in zip(lists, scores):
        for rank, (chunk, score) in enumerate(ranked, start=1):
            chunks[chunk.id] = chunk
            fused[chunk.id] = fused.get(chunk.id, 0.0) + weight / (rrf_k + rank)
            own[chunk.id] = score
    out = [Fused(chunks[i], f, scores[0].get(i), scores[1].get(i), scores[2].get(i)) for i, f in fused.items()]
    # Ties (same fused score) go to the better BM25 score, then the chunk id
    # so results are deterministic.
    out.sort(key=lambda e: (-e.score, -(e.lexical_score or 0.0), e.chunk.id))
    return out


def _merge(lists: Sequence[Ranked], depth: int) -> list[tuple[Chunk, float]]:
    if len(lists) == 1:
        return list(lists[0][:depth])
    merged: dict[str, tuple[Chunk, float]] = {}
    for ranked in lists:
        for chunk, score in ranked:
            # The same bytes may be indexed globally and by a tenant: same
            # chunk id, same text; keep one.
            if chunk.id not in merged or merged[chunk.id][1] < score:
                merged[chunk.id] = (chunk, score)
    return sorted(merged.values(), key=lambda cs: (-cs[1], cs[0].id))[:depth]


def ranked_lists(
    shards: Sequence[KnowledgeIndex],
    query_vec: npt.NDArray[np.float32],
    query_text: str,
    *,
    depth: int,
    filters: SearchFilters,
) -> Candidates:
    """The dense, BM25 and identifier lists over ``shards``, each merged across shards."""
    terms = resolve_query_terms(query_text, lambda t: any(s.knows(t) for s in shards))
    stats = LexicalStats.combine(s.lexical_stats(terms) for s in shards) if len(shards) > 1 else None
    identifier_terms = [t for t in terms if is_model_token(t)]
    identifier_stats = LexicalStats.combine(s.identifier_stats(identifier_terms) for s in shards)
    # Only rare identifiers vote: one on more than 1% of the chunks (R-410A,
    # a code every brand uses) names no particular page.
    limit = max(IDENTIFIER_MIN_DF, identifier_stats.n_docs // 100)
    identifier_terms = [t for t in identifier_terms if 0 < identifier_stats.df.get(t, 0) <= limit]
    found = [
        shard.candidates(query_vec, terms, depth, filters, stats, identifier_terms, identifier_stats)
        for shard in shards
    ]
    return Candidates(
        _merge([f.dense for f in found], depth),
        _merge([f.lexical for f in found], depth),
        _merge([f.identifiers for f in found], depth),
    )


def hybrid_search(
    shards: Sequence[KnowledgeIndex],
    query_vec: npt.NDArray[np.float32],
    query_text: str,
    *,
    k: int = 5,
    filters: SearchFilters | None = None,
    depth: int | None = None,
) -> list[SearchResult]:
    """Top ``k`` chunks of ``shards`` for the query, fused; see the module doc."""
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}, got {k}")
    if not query_text.strip():
        raise InvalidInput("the question is empty")
    lists = ranked_lists(shards, query_vec, query_text, depth=depth or max(4 * k, 40), filters=filters or SearchFilters())
    results: list[SearchResult] = []
    for chunk, score, dense_score, lexical_score, identifier_score in fuse(*lists)[:k]:
        metadata = chunk.metadata()
        metadata["dense_score"] = dense_score
        metadata["lexical_score"] = lexical_score
        metadata["identifier_match"] = identifier_score is not None
        results.append(
            SearchResult(
                chunk_id=chunk.id,
                score=round(score, 6),
                text=chunk.text,
                citation={"source": chunk.source, "page": chunk.page, "document_id": chunk.document_id},
                metadata=metadata,
            )
        )
    return results
