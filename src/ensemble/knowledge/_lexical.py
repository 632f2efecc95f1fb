"""BM25 over analyzed terms, in numpy segments.

Why it exists next to the dense index: "24ACC6" or "E4" mean nothing to an
embedding, but they are exactly what a technician types.  Model tokens are
kept whole by the analyzer, so BM25 finds the pages that contain them.

Theory of operation.  Postings are stored in immutable *segments*: three
parallel arrays (term id, row id, term frequency) sorted by term id, plus the
distinct term ids and their start offsets.  ``add`` appends a segment (no
re-sort of what exists); when more than ``_MAX_SEGMENTS`` accumulate they are
merged into one.  ``remove`` filters the rows out of every segment at once, so
no tombstones are carried and document frequencies stay exact.  A query is a
handful of ``searchsorted`` lookups and vectorised score additions into one
array over row ids.

IDF uses *caller-supplied* corpus statistics when given: a tenant's search
spans the global shard and the tenant's shard, and BM25 over the union needs
the union's N and document frequencies.  That keeps scores of different
shards comparable without any shard seeing another tenant's data.  (Length
normalisation uses each shard's own average length: exact union averages
would cost a recomputation of every cached weight per query, for a difference
of a few percent in one factor.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._text import MODEL_TOKEN_MIN_PREFIX, analyze, is_model_token

__all__ = ["LexicalIndex", "LexicalStats", "resolve_query_terms"]

_MAX_SEGMENTS: Final = 8
IdArray = npt.NDArray[np.int64]
# Postings store row ids as int32 (a shard holds far fewer than 2**31 rows):
# half the memory and half the persisted bytes of the biggest array.
RowArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class LexicalStats:
    """Corpus statistics for BM25: documents, total length, document frequencies."""

    n_docs: int
    total_len: int
    df: Mapping[str, int]

    @staticmethod
    def combine(parts: Iterable[LexicalStats]) -> LexicalStats:
        parts = list(parts)
        df: Counter[str] = Counter()
        for p in parts:
            df.update(p.df)
        return LexicalStats(sum(p.n_docs for p in parts), sum(p.total_len for p in parts), dict(df))


def resolve_query_terms(text: str, known: Callable[[str], bool]) -> list[str]:
    """Distinct query terms; an unknown model token falls back to its longest known prefix.

    A nameplate says "24ACC636A003" while the manual covers the "24ACC6"
    family; trying prefixes (longest first, at least 4 characters) maps one
    onto the other without guessing anything for ordinary words.
    """
    out: list[str] = []
    for term in analyze(text):
        if not known(term) and is_model_token(term):
            for end in range(len(term) - 1, MODEL_TOKEN_MIN_PREFIX - 1, -1):
                if known(term[:end]):
                    term = term[:end]
                    break
        if term not in out:
            out.append(term)
    return out


class _Segment:
    """Postings sorted by term id, with BM25 term weights cached per posting.

    The weight ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` only
    changes through ``avgdl``; it is recomputed when the shard's average length
    has drifted more than 10% from the one it was computed with.  That keeps a
    query to one multiply-add per posting (half the time of computing it).
    """

    __slots__ = ("terms", "rows", "tfs", "uniq", "starts", "weights", "weights_avgdl")

    def __init__(self, terms: npt.NDArray[np.int32], rows: RowArray, tfs: npt.NDArray[np.int32]) -> None:
        order = np.argsort(terms, kind="stable")
        self.terms = terms[order]
        self.rows = rows[order]
        self.tfs = tfs[order]
        self.uniq, first = np.unique(self.terms, return_index=True)
        self.starts = np.append(first, len(self.terms)).astype(np.int64)
        self.weights = np.zeros(0, np.float32)
        self.weights_avgdl = 0.0

    def refresh(self, doc_len: npt.NDArray[np.int32], avgdl: float, k1: float, b: float) -> None:
        if self.weights_avgdl and abs(self.weights_avgdl - avgdl) <= 0.1 * avgdl:
            return
        tf = self.tfs.astype(np.float32)
        norm = k1 * (1.0 - b + b * doc_len[self.rows].astype(np.float32) / np.float32(avgdl))
        self.weights = (tf * np.float32(k1 + 1.0) / (tf + norm)).astype(np.float32)
        self.weights_avgdl = avgdl

    def postings(self, term_id: int) -> tuple[RowArray, npt.NDArray[np.float32]] | None:
        i = int(np.searchsorted(self.uniq, term_id))
        if i >= len(self.uniq) or self.uniq[i] != term_id:
            return None
        a, b = self.starts[i], self.starts[i + 1]
        return self.rows[a:b], self.weights[a:b]


class LexicalIndex:
    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = {}
        self._df = np.zeros(0, dtype=np.int64)  # by term id
        self._segments: list[_Segment] = []
        self._doc_len = np.zeros(0, dtype=np.int32)  # by row id; 0 = not present
        self._n_docs = 0
        self._total_len = 0

    # -- statistics -------------------------------------------------------
    def knows(self, term: str) -> bool:
        tid = self._vocab.get(term)
        return tid is not None and self._df[tid] > 0

    def stats(self, terms: Iterable[str]) -> LexicalStats:
        df = {t: int(self._df[self._vocab[t]]) for t in terms if t in self._vocab}
        return LexicalStats(self._n_docs, self._total_len, df)

    @property
    def n_docs(self) -> int:
        return self._n_docs

    @property
    def vocabulary_size(self) -> int:
        return int(np.count_nonzero(self._df))

    # -- mutation ---------------------------------------------------------
    def add(self, rows: IdArray, texts: list[str]) -> None:
        self.add_terms(rows, [analyze(text) for text in texts])

    def add_terms(self, rows: IdArray, analyzed: list[list[str]]) -> None:
        """Index already-analyzed documents (the caller may reuse the analysis)."""
        # Vectorised over the batch: the only per-token Python work is one
        # dict lookup; (row, term) pairs are counted by np.unique on a
        # combined key instead of a Counter per chunk.
        tokens: list[str] = []
        lengths = np.zeros(len(rows), dtype=np.int32)
        for i, terms in enumerate(analyzed):
            lengths[i] = len(terms)
            tokens.extend(terms)
        vocab = self._vocab
        for term in set(tokens).difference(vocab):
            vocab[term] = len(vocab)
        if len(vocab) > len(self._df):
            self._df = np.concatenate([self._df, np.zeros(len(vocab) - len(self._df), np.int64)])
        if len(rows):
            top = int(rows.max()) + 1
            if top > len(self._doc_len):
                grown = np.zeros(max(top, 2 * len(self._doc_len)), dtype=np.int32)
                grown[: len(self._doc_len)] = self._doc_len
                self._doc_len = grown
            self._doc_len[rows] = lengths
        self._n_docs += len(rows)
        self._total_len += int(lengths.sum())
        if not tokens:
            return
        width = np.int64(len(vocab))
        term_ids = np.fromiter((vocab[t] for t in tokens), dtype=np.int64, count=len(tokens))
        keys = np.repeat(rows.astype(np.int64), lengths) * width + term_ids
        pairs, tfs = np.unique(keys, return_counts=True)
        pair_terms = (pairs % width).astype(np.int32)
        self._df += np.bincount(pair_terms, minlength=len(self._df))
        self._segments.append(_Segment(pair_terms, (pairs // width).astype(np.int32), tfs.astype(np.int32)))
        if len(self._segments) > _MAX_SEGMENTS:
            self._merge()

    def _merge(self) -> None:
        segs = self._segments
        self._segments = [
            _Segment(
                np.concatenate([s.terms for s in segs]),
                np.concatenate([s.rows for s in segs]),
                np.concatenate([s.tfs for s in segs]),
            )
        ]

    def remove(self, rows: IdArray) -> None:
        if len(rows) == 0:
            return
        kept: list[_Segment] = []
        for seg in self._segments:
            gone = np.isin(seg.rows, rows)
            if not gone.any():
                kept.append(seg)
                continue
            self._df -= np.bincount(seg.terms[gone], minlength=len(self._df))
            if (~gone).any():
                kept.append(_Segment(seg.terms[~gone], seg.rows[~gone], seg.tfs[~gone]))
        self._segments = kept
        present = rows[rows < len(self._doc_len)]
        self._n_docs -= int(np.count_nonzero(self._doc_len[present]))
        self._total_len -= int(self._doc_len[present].sum())
        self._doc_len[present] = 0

    # -- search -----------------------------------------------------------
    def search(
        self,
        terms: list[str],
        k: int,
        allowed: npt.NDArray[np.bool_] | None,
        stats: LexicalStats | None = None,
    ) -> tuple[IdArray, npt.NDArray[np.float32]]:
        """Top ``k`` rows by BM25 among ``allowed`` rows (``None`` = all)."""
        stats = stats or self.stats(terms)
        if stats.n_docs == 0 or not terms or not self._segments or not self._n_docs:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        # Length normalisation uses this shard's average length; IDF uses the
        # (possibly multi-shard) statistics passed in.  See the module doc.
        avgdl = max(self._total_len / self._n_docs, 1.0)
        for seg in self._segments:
            seg.refresh(self._doc_len, avgdl, self.k1, self.b)
        scores = np.zeros(len(self._doc_len), dtype=np.float32)
        for term in terms:
            tid = self._vocab.get(term)
            df = stats.df.get(term, 0)
            if tid is None or df == 0:
                continue
            idf = np.float32(np.log1p((stats.n_docs - df + 0.5) / (df + 0.5)))
            for seg in self._segments:
                hit = seg.postings(tid)
                if hit is not None:
                    rows, weights = hit
                    np.add.at(scores, rows, idf * weights)
        if allowed is not None:
            scores[: len(allowed)] *= allowed[: len(scores)]
            scores[len(allowed) :] = 0.0
        top = _top_k(scores, k)
        return top, scores[top]


    # -- persistence ------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        if len(self._segments) > 1:
            self._merge()
        seg = self._segments[0] if self._segments else None
        empty32 = np.zeros(0, np.int32)
        return {
            "k1": self.k1,
            "b": self.b,
            "vocab": list(self._vocab),
            "df": self._df.tobytes(),
            "doc_len": self._doc_len.tobytes(),
            "n_docs": self._n_docs,
            "total_len": self._total_len,
            "terms": (seg.terms if seg else empty32).tobytes(),
            "rows": (seg.rows if seg else np.zeros(0, np.int32)).tobytes(),
            "tfs": (seg.tfs if seg else empty32).tobytes(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LexicalIndex:
        self = cls(k1=float(state["k1"]), b=float(state["b"]))
        vocab = list(state["vocab"])
        self._vocab = {t: i for i, t in enumerate(vocab)}
        self._df = np.frombuffer(state["df"], np.int64).copy()
        if len(self._df) != len(vocab):
            raise ValueError("lexical state: vocabulary and document frequencies differ in length")
        self._doc_len = np.frombuffer(state["doc_len"], np.int32).copy()
        self._n_docs = int(state["n_docs"])
        self._total_len = int(state["total_len"])
        terms = np.frombuffer(state["terms"], np.int32)
        if len(terms):
            self._segments = [_Segment(terms.copy(), np.frombuffer(state["rows"], np.int32).copy(), np.frombuffer(state["tfs"], np.int32).copy())]
        return self


def _top_k(scores: npt.NDArray[np.float32], k: int) -> IdArray:
    """Indices of the ``k`` largest positive scores, best first (ties: lower index).

    ``argpartition`` over 100k floats costs ~1.8 ms, most of a query's
    budget.  Instead: if at least ``k`` scores reach a fraction of the maximum,
    the top ``k`` are among them (any score below the cut is below the k-th
    best), so partition only those; lower the cut until enough qualify.
    """
    best = float(scores.max()) if len(scores) else 0.0
    if best <= 0.0:
        return np.zeros(0, np.int64)
    for fraction in (0.5, 0.25, 0.1, 0.0):
        candidates = np.flatnonzero(scores > best * fraction) if fraction else np.flatnonzero(scores)
        if len(candidates) >= k or not fraction:
            break
    if len(candidates) > k:
        candidates = candidates[np.argpartition(scores[candidates], -k)[-k:]]
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order].astype(np.int64)
