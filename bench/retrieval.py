"""Retrieval quality over the sample manuals: recall@1, recall@5, MRR.

Runs the labelled technician questions of ``samples/questions.json`` against a
knowledge base holding the sample corpus, with the default (offline) embedder.
Baselines in the same run: the dense ranking alone and BM25 alone, so the
effect of fusing them is visible.  ``--misses`` lists the questions whose
answer page is not in the top 5.

    .venv/bin/python bench/retrieval.py [--misses]

Last line: {"recall_at_1": ..., "recall_at_5": ..., "mrr": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import ensemble.knowledge  # noqa: F401  (installed, e.g. pip install -e .)
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ensemble.knowledge import Chunk, KnowledgeBase, SearchFilters, load_samples
from ensemble.knowledge._samples import samples_dir
from ensemble.knowledge._search import fuse, ranked_lists

DEPTH = 10  # MRR is computed over the top 10


def _rank(pages: list[tuple[str, int]], answers: set[tuple[str, int]]) -> int | None:
    for rank, page in enumerate(pages, start=1):
        if page in answers:
            return rank
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="print questions missed at k=5")
    args = parser.parse_args()

    kb = KnowledgeBase()
    load_samples(kb)
    shard = kb.shard(None)
    questions = json.loads((samples_dir() / "questions.json").read_text())["questions"]

    ranks: dict[str, list[int | None]] = {"hybrid": [], "dense only": [], "bm25 only": []}
    misses: list[str] = []
    for item in questions:
        # The assistant adds the session's equipment to the query, as in the
        # reference RAG flow ("Why isn't my AC cooling? Carrier 24ACC6").
        query = f"{item['q']} {item.get('context', '')}".strip()
        answers = {(doc, page) for doc, page in item["answers"]}
        vec = kb.embedder.embed([query])[0]
        dense, lexical, identifiers = ranked_lists([shard], vec, query, depth=40, filters=SearchFilters())

        def pages(ranked: list[tuple[Chunk, float]]) -> list[tuple[str, int]]:
            return [(c.document_id, c.page) for c, _ in ranked[:DEPTH]]

        hybrid = [(f.chunk, f.score) for f in fuse(dense, lexical, identifiers)]
        # Cross-check: the public search path must rank exactly like this.
        public = [(r.metadata["document_id"], r.citation["page"]) for r in kb.search(query, k=DEPTH)]
        assert public == pages(hybrid), f"search() and fuse() disagree for {query!r}"
        for name, ranked in (("hybrid", hybrid), ("dense only", dense), ("bm25 only", lexical)):
            ranks[name].append(_rank(pages(ranked), answers))
        if (ranks["hybrid"][-1] or DEPTH + 1) > 5:
            misses.append(f"  rank {ranks['hybrid'][-1]}: {query!r} -> {pages(hybrid)[:3]}")

    def metrics(rs: list[int | None]) -> dict[str, float]:
        n = len(rs)
        return {
            "recall_at_1": round(sum(1 for r in rs if r == 1) / n, 4),
            "recall_at_5": round(sum(1 for r in rs if r is not None and r <= 5) / n, 4),
            "mrr": round(sum(1.0 / r for r in rs if r is not None) / n, 4),
        }

    print(f"{len(questions)} questions, {len(shard)} chunks, embedder {kb.embedder.name}")
    print(f"{'ranking':<12} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>8}")
    for name, rs in ranks.items():
        m = metrics(rs)
        print(f"{name:<12} {m['recall_at_1']:>9.3f} {m['recall_at_5']:>9.3f} {m['mrr']:>8.3f}")
    if args.misses and misses:
        print("missed at k=5:")
        print("\n".join(misses))
    print(json.dumps(metrics(ranks["hybrid"])))


if __name__ == "__main__":
    main()
