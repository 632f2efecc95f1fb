"""Embedders: text -> L2-normalised float32 vectors.

Embedding is CPU work and synchronous on purpose: callers run it in
``trio.to_thread.run_sync`` so the event loop never waits on it.

The default is :class:`HashingEmbedder`, which needs no model file and no
network (see docs/knowledge.md for why that is the default).  A
:class:`SentenceTransformerEmbedder` is used only when a local model directory
is configured and exists; ``sentence_transformers`` is imported lazily and is
not a dependency of Ensemble.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError
from ._text import analyze

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
]

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedding model.

    ``name`` identifies the vector space: it is stored with a serialized index
    so that vectors from two different embedders are never compared.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> Vectors:
        """Shape ``(len(texts), dim)``, float32, each row of L2 norm 1 (or 0)."""
        ...


_MASK32: Final = np.uint64(0xFFFFFFFF)
_FAMILY_BIGRAM: Final = np.uint64(1 << 32)
_FAMILY_CHAR: Final = np.uint64(2 << 32)


def _fmix32(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # murmur3's finaliser: crc32 is linear, so its low bits (the bucket) and
    # high bit (the sign) would be correlated without a mixing step.
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & _MASK32
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & _MASK32
    return h ^ (h >> np.uint64(16))


class HashingEmbedder:
    """Feature hashing of terms, term bigrams and character n-grams.

    Features use the same analyzer as the lexical ranking.  Each feature's
    weight is ``family_weight * (1 + ln(count))`` (sublinear tf), its bucket and
    sign come from a mixed crc32 (stable across processes, unlike ``hash()``).
    Character 3/4-grams give partial credit between "compressor" and
    "compressors", or "24acc6" and "24acc636"; bigrams reward phrases ("low
    pressure" vs "pressure ... low").
    """

    _CACHE_LIMIT: Final = 200_000

    def __init__(
        self,
        dim: int = 512,
        *,
        word_weight: float = 1.0,
        bigram_weight: float = 0.6,
        char_weight: float = 0.25,
        char_ngrams: tuple[int, ...] = (3, 4),
    ) -> None:
        if dim < 16:
            raise ConfigError(f"embedding dimension must be at least 16, got {dim}")
        self._dim = dim
        self._weights = (word_weight, bigram_weight, char_weight)
        self._ngrams = char_ngrams
        # token -> (crc32 of the token, crc32s of its character n-grams).
        # Technical vocabulary is small, so this cache makes re-embedding a
        # corpus ~5x faster; it is bounded to stay a cache, not a leak.
        self._cache: dict[str, tuple[int, npt.NDArray[np.uint64]]] = {}

    @property
    def name(self) -> str:
        # Bump "v1" whenever the analyzer (_text.py) or the hashing changes:
        # stored indexes compare this name to refuse incompatible vectors.
        w, b, c = self._weights
        grams = ",".join(map(str, self._ngrams))
        return f"hashing-v1:dim={self._dim}:w={w}:b={b}:c={c}:n={grams}"

    @property
    def dim(self) -> int:
        return self._dim

    def _token_features(self, token: str) -> tuple[int, npt.NDArray[np.uint64]]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        padded = f"<{token}>"
        grams = [
            zlib.crc32(padded[i : i + n].encode())
            for n in self._ngrams
            for i in range(len(padded) - n + 1)
        ]
        entry = (zlib.crc32(token.encode()), np.array(grams, dtype=np.uint64))
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = entry
        return entry

    def embed(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        weights = np.array(self._weights, dtype=np.float64)
        dim = np.uint64(self._dim)
        for row, text in enumerate(texts):
            terms = analyze(text)
            if not terms:
                continue
            feats = [self._token_features(t) for t in terms]
            words = np.fromiter((f[0] for f in feats), dtype=np.uint64, count=len(feats))
            # Combine the two term hashes arithmetically instead of hashing
            # "a b" strings: no per-bigram Python work.
            bigrams = (words[:-1] * np.uint64(0x9E3779B1) + words[1:] + np.uint64(0x7F4A7C15)) & _MASK32
            # The feature family (0 word, 1 bigram, 2 char n-gram) rides in
            # bits 32-33 so one np.unique counts all three at once.
            keys = np.concatenate(
                [words, bigrams | _FAMILY_BIGRAM, np.concatenate([f[1] for f in feats]) | _FAMILY_CHAR]
            )
            uniq, counts = np.unique(keys, return_counts=True)
            family = uniq >> np.uint64(32)
            mixed = _fmix32((uniq & _MASK32) ^ ((family * np.uint64(0x27D4EB2F)) & _MASK32))
            values = weights[family.astype(np.intp)] * (1.0 + np.log(counts))
            values[(mixed & np.uint64(0x80000000)) != 0] *= -1.0
            vec = np.bincount((mixed % dim).astype(np.intp), weights=values, minlength=self._dim)
            norm = float(np.sqrt(vec @ vec))
            if norm > 0.0:
                out[row] = vec / norm
        return out


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (e.g. bge-base-en-v1.5 on disk).

    Never downloads: the path must be an existing directory, and the library
    must already be installed; otherwise :class:`ConfigError` at construction.
    """

    def __init__(self, model_path: str | Path, *, batch_size: int = 32) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise ConfigError(f"embedding model directory {str(path)!r} does not exist")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "a local embedding model is configured but sentence-transformers is not installed"
            ) from exc
        # local_files_only keeps Hugging Face from reaching the network even
        # when the directory is incomplete.
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        dim = self._model.get_sentence_embedding_dimension()
        if not isinstance(dim, int):
            raise ConfigError(f"cannot determine the embedding dimension of {str(path)!r}")
        self._dim = dim
        self._name = f"st:{path.name}:dim={dim}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vecs = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def default_embedder(model_path: str | Path | None = None) -> Embedder:
    """The sentence-transformers model at ``model_path`` if it exists, else hashing.

    A configured path that is missing falls back rather than failing, so a
    fresh install works offline; the fallback is visible in ``embedder.name``.
    """
    if model_path is not None and Path(model_path).is_dir():
        return SentenceTransformerEmbedder(model_path)
    return HashingEmbedder()
