"""The FAISS side of the index: exact while small, IVF once large.

Theory of operation.  Exact inner-product search (``IndexFlatIP`` under an
``IndexIDMap2``) costs one pass over all vectors per query: 12-14 ms at 100k
chunks x 768 dims on one core (measured), over the 10 ms budget for the whole
search.  So past ``ivf_threshold`` vectors the flat index is converted, once,
into an ``IndexIVFScalarQuantizer`` trained on the vectors it holds:

* IVF, because it supports ``remove_ids`` and ``add_with_ids`` natively, so
  replacing a manual never rebuilds the index (HNSW cannot remove);
* 8-bit scalar quantization of the raw vectors (no residuals), because the
  scan is memory-bound: a quarter of the bytes lets a query visit about twice
  as many clusters in the same time, and on the 100k bench that bought more
  recall than exact float distances do (SQ8 alone keeps ~98% of the exact
  top-10);
* ``nlist`` ~ sqrt(n) clusters and a fixed ``nprobe`` (96): latency stays
  bounded as the corpus grows; the recall against exact search is printed by
  bench/knowledge.py.  Hashing-embedder vectors cluster weakly, so nprobe is
  high; with a sentence-transformer model a lower nprobe is enough.

When the vector count has grown 4x past the size the clusters were trained on,
the next ``add`` retrains from the stored (decoded) vectors.

Filters arrive as a boolean mask over row ids and become an
``IDSelectorBitmap``.  Filters are independent of clusters, so a filtered
query with the same ``nprobe`` has the same recall as an unfiltered one, and
costs less (only allowed ids get a distance).  Only when the allowed set is
so small that the probed lists would hold too few of them does ``nprobe``
grow, up to every list: an exact search over a small allowed set.
"""

from __future__ import annotations

import math
from typing import Any, Final

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

__all__ = ["DenseIndex"]

# The type stubs shipped with faiss describe the C++ classes, not the Python
# wrapper's keyword constructors and numpy-accepting methods used here.
faiss: Any = _faiss

IdArray = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

# A filtered IVF query probes enough lists to expect this many allowed vectors.
_MIN_SCANNED: Final = 500


class DenseIndex:
    """Inner-product search over L2-normalised vectors; see the module doc."""

    # Below ~20k vectors an exact scan is ~2 ms: no reason to approximate.
    DEFAULT_IVF_THRESHOLD: Final = 20_000
    # 96 of 256 lists at 100k: ~86% of the exact top-10 on the synthetic
    # bench, p99 well under budget (bench/knowledge.py prints both).
    DEFAULT_NPROBE: Final = 96

    def __init__(self, dim: int, *, ivf_threshold: int = DEFAULT_IVF_THRESHOLD, nprobe: int = DEFAULT_NPROBE) -> None:
        self.dim = dim
        self.ivf_threshold = ivf_threshold
        self.nprobe = nprobe
        # Any: the flat IndexIDMap2 and the IVF index have different attributes.
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._trained_on = 0  # vectors the IVF clusters were fitted to; 0 = flat

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def trained_on(self) -> int:
        """How many vectors the IVF clusters were fitted to (0 while flat)."""
        return self._trained_on

    @property
    def kind(self) -> str:
        return "ivf" if self._trained_on else "flat"

    def add(self, ids: IdArray, vectors: npt.NDArray[np.float32]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidInput(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if len(ids) != len(vectors):
            raise InvalidInput(f"{len(ids)} ids for {len(vectors)} vectors")
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        total = self.ntotal
        if (not self._trained_on and total >= self.ivf_threshold) or (
            self._trained_on and total >= 4 * self._trained_on
        ):
            self._rebuild_ivf()

    def remove(self, ids: IdArray) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def vectors(self) -> tuple[IdArray, npt.NDArray[np.float32]]:
        """All stored (ids, vectors): for retraining, and for tests."""
        if not self._trained_on:
            flat = faiss.downcast_index(self._index.index)
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            vecs = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, self.dim)
            return ids, vecs.copy()
        ivf = self._index
        lists = ivf.invlists
        all_ids: list[IdArray] = []
        all_vecs: list[npt.NDArray[np.float32]] = []
        for i in range(ivf.nlist):
            size = lists.list_size(i)
            if size == 0:
                continue
            all_ids.append(np.array(faiss.rev_swig_ptr(lists.get_ids(i), size), dtype=np.int64))
            codes = np.frombuffer(faiss.rev_swig_ptr(lists.get_codes(i), size * ivf.code_size), dtype=np.uint8)
            all_vecs.append(ivf.sq.decode(codes.reshape(size, ivf.code_size).copy()))
        if not all_ids:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate(all_ids), np.concatenate(all_vecs)

    def _rebuild_ivf(self) -> None:
        ids, vecs = self.vectors()
        n = len(ids)
        # ~sqrt(n) clusters, at least 39 training points each (FAISS warns
        # below that), a power of two so sizes are predictable.
        nlist = 2 ** min(round(math.log2(math.sqrt(n))), int(math.log2(max(n // 39, 1))))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
        )
        ivf.cp.niter = 12  # k-means converges enough for routing in a dozen passes
        # Per-dimension 8-bit ranges come from the training sample; widen them
        # by 25% each side so vectors added later are rarely clipped.
        ivf.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        ivf.sq.rangestat_arg = 0.25
        rng = np.random.default_rng(0)  # deterministic clusters for a given corpus
        sample = vecs if n <= 64 * nlist else vecs[rng.choice(n, 64 * nlist, replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(vecs, ids)
        # (faiss's Python wrapper keeps `quantizer` referenced from `ivf`.)
        self._index = ivf
        self._trained_on = n

    def search(self, query: npt.NDArray[np.float32], k: int, allowed: Mask | None) -> tuple[IdArray, npt.NDArray[np.float32]]:
        """Top ``k`` (ids, inner products) among ``allowed`` row ids (``None`` = all)."""
        total = self.ntotal
        if total == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        sel: Any = None
        params: Any
        fraction = 1.0
        bitmap = None
        if allowed is not None:
            n_allowed = int(np.count_nonzero(allowed))
            if n_allowed == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            fraction = n_allowed / total
            bitmap = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        if self._trained_on:
            nlist = int(self._index.nlist)
            # Probe enough lists that ~`_MIN_SCANNED` allowed vectors are
            # expected in them (filters are independent of clusters), never
            # fewer than the unfiltered nprobe: a 1% filter visits every list
            # (exact, and cheap since only allowed ids get a distance).
            wanted = math.ceil(_MIN_SCANNED * nlist / max(fraction * total, 1.0))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=min(nlist, max(self.nprobe, wanted)))
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        # One query is too little work to share between threads: OpenMP's
        # fork/join doubled the p99 in measurements.  The OpenMP setting is
        # per calling thread, and restored so index builds keep every core.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(q, min(k, total), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        del bitmap  # kept alive until here: the selector points into it
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]

    def to_bytes(self) -> bytes:
        return bytes(faiss.serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes, *, dim: int, trained_on: int, ivf_threshold: int, nprobe: int) -> DenseIndex:
        self = cls(dim, ivf_threshold=ivf_threshold, nprobe=nprobe)
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise InvalidInput(f"the serialized FAISS index is damaged ({exc})") from None
        if index.d != dim:
            raise InvalidInput(f"the serialized FAISS index has dimension {index.d}, expected {dim}")
        # deserialize_index already returns the concrete class.  (Downcasting
        # again would create a second proxy while this one, which owns the
        # C++ object, is garbage-collected: a use-after-free.)
        self._index = index
        self._trained_on = trained_on
        return self
