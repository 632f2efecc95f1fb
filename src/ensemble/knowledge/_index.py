"""KnowledgeIndex: chunks + their vectors + BM25, searchable with filters.

One index is one *shard*: the global manuals, or one tenant's own manuals
(see :mod:`._base`).  Rows are numbered by a counter that never reuses a
number, and those numbers are the FAISS ids, the BM25 row ids and the index
into the metadata columns used to build filter masks.  Removing a document
removes its rows from FAISS (``remove_ids``) and from BM25; nothing is
rebuilt.

Methods are synchronous and guarded by a lock: callers run them in
``trio.to_thread`` and may do so from several threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Final, Literal

import msgpack
import numpy as np
import numpy.typing as npt

from ..errors import ConfigError, Conflict, InvalidInput
from ._dense import DenseIndex
from ._lexical import LexicalIndex, LexicalStats
from ._text import analyze, is_model_token
from ._types import Candidates, Chunk, Ranked, SearchFilters, SearchResult

__all__ = ["KnowledgeIndex"]

_FORMAT: Final = "ensemble-knowledge-index"
_VERSION: Final = 1  # bump on any change of the blob layout
_FILTER_FIELDS: Final = ("manufacturer", "model", "equipment_type", "category")
_CHUNK_FIELDS: Final = tuple(f.name for f in fields(Chunk))
_NONE: Final = -1  # metadata code of "not set"; for tenant_id it means global

Mask = npt.NDArray[np.bool_]


def _identifiers(chunk: Chunk, body: list[str]) -> list[str]:
    """Model numbers and codes in a chunk's heading and text, minus its manual's model.

    "The 24ACC6 is a split system" on the overview page of the 24ACC6 manual
    says nothing more specific than the context prefix of every other chunk
    of that manual; "GSX140361" in a spec row, "E4" on a fault page or in a
    heading ("E8 Welded Contactor") does.
    """
    own = set(analyze(chunk.model)) if chunk.model else set()
    heading = analyze(chunk.heading) if chunk.heading else []
    return [t for t in heading + body if is_model_token(t) and t not in own]


class _Column:
    """A metadata field as int codes by row, for vectorised filter masks."""

    __slots__ = ("codes", "values")

    def __init__(self) -> None:
        self.codes = np.full(0, _NONE, dtype=np.int32)
        self.values: dict[str, int] = {}

    def set(self, rows: npt.NDArray[np.int64], values: Sequence[str | None], size: int) -> None:
        if size > len(self.codes):
            grown = np.full(max(size, 2 * len(self.codes)), _NONE, dtype=np.int32)
            grown[: len(self.codes)] = self.codes
            self.codes = grown
        codes = [_NONE if v is None else self.values.setdefault(v.lower(), len(self.values)) for v in values]
        self.codes[rows] = codes

    def code(self, value: str) -> int | None:
        return self.values.get(value.lower())


class KnowledgeIndex:
    """A searchable shard of manual chunks.  See the module doc."""

    def __init__(
        self,
        dim: int,
        *,
        embedder_name: str | None = None,
        ivf_threshold: int = DenseIndex.DEFAULT_IVF_THRESHOLD,
        nprobe: int = DenseIndex.DEFAULT_NPROBE,
    ) -> None:
        if dim <= 0:
            raise ConfigError(f"index dimension must be positive, got {dim}")
        self.dim = dim
        self.embedder_name = embedder_name
        self._lock = threading.RLock()
        self._dense = DenseIndex(dim, ivf_threshold=ivf_threshold, nprobe=nprobe)
        self._lexical = LexicalIndex()
        # BM25 over the model numbers and codes of each chunk's heading and
        # text, minus its manual's model (see _identifiers): the "identifier"
        # vote of ._search.fuse.
        self._identifiers = LexicalIndex()
        self._columns = {name: _Column() for name in (*_FILTER_FIELDS, "tenant_id")}
        self._chunks: dict[int, Chunk] = {}
        self._rows_by_id: dict[str, int] = {}
        self._rows_by_document: dict[str, list[int]] = {}
        self._next_row = 0
        self._tenant_rows = 0  # rows with a tenant: if 0 the visibility mask is a no-op

    # -- introspection ----------------------------------------------------
    def __len__(self) -> int:
        return len(self._chunks)

    def get(self, chunk_id: str) -> Chunk | None:
        row = self._rows_by_id.get(chunk_id)
        return None if row is None else self._chunks[row]

    def has_document(self, document_id: str) -> bool:
        return document_id in self._rows_by_document

    def document_hash(self, document_id: str) -> str | None:
        rows = self._rows_by_document.get(document_id)
        return self._chunks[rows[0]].content_hash if rows else None

    def document_ids(self) -> list[str]:
        return list(self._rows_by_document)

    def document_chunk_count(self, document_id: str) -> int:
        return len(self._rows_by_document.get(document_id, ()))

    def tenants(self) -> set[str | None]:
        """The tenant ids present among the chunks (``None`` = global)."""
        return {c.tenant_id for c in self._chunks.values()}

    def statistics(self) -> dict[str, Any]:
        return {
            "chunks": len(self._chunks),
            "documents": len(self._rows_by_document),
            "dense_kind": self._dense.kind,
            "dense_vectors": self._dense.ntotal,
            "terms": self._lexical.vocabulary_size,
            "embedder": self.embedder_name,
        }

    # -- mutation ---------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], vectors: npt.NDArray[np.float32]) -> None:
        """Index ``chunks`` with their ``vectors`` (same order, from ``embed_text``)."""
        with self._lock:
            vectors = self._check_new(chunks, vectors, replacing=None)
            if chunks:
                self._add_checked(chunks, vectors)

    def replace_document(self, document_id: str, chunks: Sequence[Chunk], vectors: npt.NDArray[np.float32]) -> int:
        """Swap a document's chunks for new ones atomically; returns how many were removed.

        Searches in other threads see the old version or the new one, never
        neither; if the new chunks are refused, the old version stays.
        """
        if not chunks or any(c.document_id != document_id for c in chunks):
            raise InvalidInput(f"the new chunks must all belong to document {document_id!r}")
        with self._lock:
            vectors = self._check_new(chunks, vectors, replacing=document_id)
            removed = self.remove_document(document_id)
            self._add_checked(chunks, vectors)
            return removed

    def _check_new(
        self, chunks: Sequence[Chunk], vectors: npt.NDArray[np.float32], *, replacing: str | None
    ) -> npt.NDArray[np.float32]:
        # Everything that can refuse an add is checked before anything changes.
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(chunks), self.dim):
            raise InvalidInput(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
        seen: set[str] = set()
        for chunk in chunks:
            row = self._rows_by_id.get(chunk.id)
            taken = row is not None and self._chunks[row].document_id != replacing
            if taken or chunk.id in seen:
                raise Conflict(f"chunk {chunk.id} is already indexed; remove document {chunk.document_id} first")
            seen.add(chunk.id)
        return vectors

    def _add_checked(self, chunks: Sequence[Chunk], vectors: npt.NDArray[np.float32]) -> None:
        rows = np.arange(self._next_row, self._next_row + len(chunks), dtype=np.int64)
        self._dense.add(rows, vectors)
        self._next_row += len(chunks)
        bodies = [analyze(c.text) for c in chunks]
        self._lexical.add_terms(rows, [analyze(c.context) + body for c, body in zip(chunks, bodies)])
        self._identifiers.add_terms(rows, [_identifiers(c, body) for c, body in zip(chunks, bodies)])
        for name, column in self._columns.items():
            column.set(rows, [getattr(c, name) for c in chunks], self._next_row)
        for row, chunk in zip(rows.tolist(), chunks):
            self._chunks[row] = chunk
            self._rows_by_id[chunk.id] = row
            self._rows_by_document.setdefault(chunk.document_id, []).append(row)
            if chunk.tenant_id is not None:
                self._tenant_rows += 1

    def remove_document(self, document_id: str) -> int:
        """Remove every chunk of ``document_id``; returns how many were removed."""
        with self._lock:
            rows_list = self._rows_by_document.pop(document_id, None)
            if not rows_list:
                return 0
            rows = np.array(rows_list, dtype=np.int64)
            self._dense.remove(rows)
            self._lexical.remove(rows)
            self._identifiers.remove(rows)
            for row in rows_list:
                chunk = self._chunks.pop(row)
                del self._rows_by_id[chunk.id]
                if chunk.tenant_id is not None:
                    self._tenant_rows -= 1
            for column in self._columns.values():
                column.codes[rows] = _NONE
            return len(rows_list)

    # -- search -----------------------------------------------------------
    def knows(self, term: str) -> bool:
        with self._lock:  # an add() in another thread grows the vocabulary
            return self._lexical.knows(term)

    def lexical_stats(self, terms: Sequence[str]) -> LexicalStats:
        with self._lock:
            return self._lexical.stats(terms)

    def identifier_stats(self, terms: Sequence[str]) -> LexicalStats:
        with self._lock:
            return self._identifiers.stats(terms)

    def _mask(self, filters: SearchFilters) -> Mask | None | Literal[False]:
        """Allowed rows; ``None`` = all rows, ``False`` = none at all."""
        mask: Mask | None = None
        for name in _FILTER_FIELDS:
            value = getattr(filters, name)
            if value is None:
                continue
            code = self._columns[name].code(value)
            if code is None:
                return False
            part = self._columns[name].codes[: self._next_row] == code
            mask = part if mask is None else mask & part
        if self._tenant_rows:
            tenants = self._columns["tenant_id"].codes[: self._next_row]
            visible = tenants == _NONE
            code = self._columns["tenant_id"].code(filters.tenant_id) if filters.tenant_id else None
            if code is not None:
                visible |= tenants == code
            mask = visible if mask is None else mask & visible
        return mask

    def candidates(
        self,
        query_vec: npt.NDArray[np.float32],
        terms: list[str],
        depth: int,
        filters: SearchFilters,
        stats: LexicalStats | None = None,
        identifier_terms: Sequence[str] = (),
        identifier_stats: LexicalStats | None = None,
    ) -> Candidates:
        """Dense, BM25 and identifier BM25 top-``depth`` lists (fused in ._search)."""
        with self._lock:
            mask = self._mask(filters)
            if mask is False:
                return Candidates([], [], [])
            d_ids, d_scores = self._dense.search(query_vec, depth, mask)
            l_ids, l_scores = self._lexical.search(terms, depth, mask, stats)
            i_ids, i_scores = self._identifiers.search(list(identifier_terms), depth, mask, identifier_stats)
            return Candidates(self._ranked(d_ids, d_scores), self._ranked(l_ids, l_scores), self._ranked(i_ids, i_scores))

    def _ranked(self, ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32]) -> Ranked:
        return [(self._chunks[r], float(s)) for r, s in zip(ids.tolist(), scores.tolist())]

    def search(
        self,
        query_vec: npt.NDArray[np.float32],
        query_text: str,
        k: int = 5,
        filters: SearchFilters | None = None,
    ) -> list[SearchResult]:
        """Hybrid (dense + BM25, fused) search of this shard alone."""
        from ._search import hybrid_search

        return hybrid_search([self], query_vec, query_text, k=k, filters=filters)

    # -- persistence ------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A self-contained blob (FAISS index + BM25 + chunks), msgpack-framed."""
        with self._lock:
            rows = sorted(self._chunks)
            columns = {name: [getattr(self._chunks[r], name) for r in rows] for name in _CHUNK_FIELDS}
            blob: bytes = msgpack.packb(
                {
                    "format": _FORMAT,
                    "version": _VERSION,
                    "dim": self.dim,
                    "embedder": self.embedder_name,
                    "next_row": self._next_row,
                    "rows": rows,
                    "chunks": columns,
                    "dense": self._dense.to_bytes(),
                    "dense_trained_on": self._dense.trained_on,
                    "ivf_threshold": self._dense.ivf_threshold,
                    "nprobe": self._dense.nprobe,
                    "lexical": self._lexical.to_state(),
                    "identifiers": self._identifiers.to_state(),
                },
                use_bin_type=True,
            )
            return blob

    @classmethod
    def from_bytes(cls, data: bytes, *, embedder_name: str | None = None) -> KnowledgeIndex:
        """Load a blob from :meth:`to_bytes`; refuses one built by another embedder."""
        try:
            blob = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as exc:
            raise InvalidInput(f"not a knowledge index blob ({type(exc).__name__})") from None
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise InvalidInput("not a knowledge index blob")
        if blob.get("version") != _VERSION:
            raise InvalidInput(f"knowledge index blob version {blob.get('version')!r} is not supported")
        if embedder_name is not None and blob["embedder"] != embedder_name:
            raise ConfigError(
                f"the index was built with embedder {blob['embedder']!r} but {embedder_name!r} is configured; "
                "re-ingest the manuals to rebuild it"
            )
        try:
            self = cls(
                int(blob["dim"]),
                embedder_name=blob["embedder"],
                ivf_threshold=int(blob["ivf_threshold"]),
                nprobe=int(blob["nprobe"]),
            )
            self._dense = DenseIndex.from_bytes(
                blob["dense"],
                dim=self.dim,
                trained_on=int(blob["dense_trained_on"]),
                ivf_threshold=self._dense.ivf_threshold,
                nprobe=self._dense.nprobe,
            )
            self._lexical = LexicalIndex.from_state(blob["lexical"])
            self._identifiers = LexicalIndex.from_state(blob["identifiers"])
            self._next_row = int(blob["next_row"])
            rows = np.array(blob["rows"], dtype=np.int64)
            cols = blob["chunks"]
            chunks = [Chunk(**{name: cols[name][i] for name in _CHUNK_FIELDS}) for i in range(len(rows))]
        except InvalidInput:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInput(f"the knowledge index blob is damaged ({type(exc).__name__}: {exc})") from None
        if self._dense.ntotal != len(chunks):
            raise InvalidInput(f"the knowledge index blob is damaged ({self._dense.ntotal} vectors for {len(chunks)} chunks)")
        for name, column in self._columns.items():
            column.set(rows, [getattr(c, name) for c in chunks], self._next_row)
        for row, chunk in zip(rows.tolist(), chunks):
            self._chunks[row] = chunk
            self._rows_by_id[chunk.id] = row
            self._rows_by_document.setdefault(chunk.document_id, []).append(row)
            self._tenant_rows += chunk.tenant_id is not None
        return self
