"""Embedders: determinism (across processes too), normalisation, the offline default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ensemble.errors import ConfigError
from ensemble.knowledge import Embedder, HashingEmbedder, SentenceTransformerEmbedder, analyze, default_embedder

TEXTS = [
    "Compressor hums but will not start: test the run capacitor.",
    "Flame sensor dirty, furnace locks out after three tries.",
    "",
    "24ACC6",
]


def test_vectors_are_float32_unit_norm_and_zero_for_empty_text() -> None:
    vecs = HashingEmbedder(dim=256).embed(TEXTS)
    assert vecs.shape == (4, 256) and vecs.dtype == np.float32
    norms = np.linalg.norm(vecs, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 3]], 1.0, rtol=1e-5)
    assert norms[2] == 0.0


def test_same_input_same_vector_across_instances_and_batches() -> None:
    a = HashingEmbedder().embed(TEXTS)
    b = HashingEmbedder().embed(list(reversed(TEXTS)))[::-1]
    c = np.vstack([HashingEmbedder().embed([t]) for t in TEXTS])
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_same_vector_in_another_process_with_another_hash_seed() -> None:
    # Python's hash() is salted per process; the embedder must not depend on it,
    # or an index persisted by one process is garbage to the next.
    script = (
        "import sys; from ensemble.knowledge import HashingEmbedder; "
        "sys.stdout.write(HashingEmbedder().embed([sys.argv[1]]).tobytes().hex())"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", script, TEXTS[0]], env=env, capture_output=True, text=True, check=True)
    assert bytes.fromhex(out.stdout) == HashingEmbedder().embed([TEXTS[0]]).tobytes()


def test_related_texts_are_closer_than_unrelated_ones() -> None:
    e = HashingEmbedder()
    q, related, unrelated = e.embed(
        [
            "capacitor test with a microfarad meter",
            "Test the dual run capacitor with a meter that reads microfarads.",
            "Slope the PVC vent a quarter inch per foot toward the furnace.",
        ]
    )
    assert float(q @ related) > float(q @ unrelated) + 0.1


def test_character_ngrams_give_partial_credit_to_near_spellings() -> None:
    e = HashingEmbedder()
    a, b, c = e.embed(["24ACC636A003", "24ACC6", "GMVC96"])
    assert float(a @ b) > float(a @ c)


def test_name_identifies_the_vector_space() -> None:
    assert HashingEmbedder().name == HashingEmbedder().name
    assert HashingEmbedder(dim=256).name != HashingEmbedder(dim=512).name
    assert HashingEmbedder(char_weight=0.0).name != HashingEmbedder().name


def test_hashing_embedder_satisfies_the_protocol_and_is_the_default() -> None:
    e = default_embedder()
    assert isinstance(e, HashingEmbedder) and isinstance(e, Embedder)
    assert 512 <= e.dim <= 1024


def test_missing_model_directory_falls_back_to_hashing(tmp_path: Path) -> None:
    assert isinstance(default_embedder(tmp_path / "no-such-model"), HashingEmbedder)


def test_sentence_transformer_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SentenceTransformerEmbedder(tmp_path / "nope")


def test_sentence_transformer_without_the_library_is_a_config_error(tmp_path: Path) -> None:
    # The library is deliberately not a dependency of Ensemble.
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="not installed"):
            SentenceTransformerEmbedder(tmp_path)
    else:  # pragma: no cover - only where someone installed it
        pytest.skip("sentence-transformers is installed here")


def test_tiny_dimension_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        HashingEmbedder(dim=4)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Carrier 24ACC6", ["carrier", "24acc6"]),
        ("R-410A", ["r410a", "410a"]),
        ("A/C won't start", ["ac", "start"]),
        ("blinking tstat, bad cap", ["flash", "thermostat", "bad", "capacitor"]),
        ("cycling cycles cycled", ["cycl", "cycl", "cycl"]),
        ("E4", ["e4"]),
        ("68-70 psig", ["68", "70", "psi"]),
    ],
)
def test_analyzer(text: str, terms: list[str]) -> None:
    assert analyze(text) == terms
