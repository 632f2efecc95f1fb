"""KnowledgeIndex and KnowledgeBase: add, remove, filters, tenants, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.errors import ConfigError, Conflict, InvalidInput, NotFound
from ensemble.knowledge import (
    Chunk,
    DocumentMeta,
    HashingEmbedder,
    KnowledgeBase,
    KnowledgeIndex,
    SearchFilters,
)

from .helpers import chunk

EMBEDDER = HashingEmbedder(dim=128)

CHUNKS = [
    chunk("c1", "Carrier condenser: check the run capacitor when the compressor hums.", document_id="carrier", manufacturer="Carrier", model="24ACC6", equipment_type="split_system_ac", category="troubleshooting"),
    chunk("c2", "Carrier condenser: clean the outdoor coil every spring.", document_id="carrier", page=2, manufacturer="Carrier", model="24ACC6", equipment_type="split_system_ac", category="maintenance"),
    chunk("t1", "Trane condenser: check the run capacitor when the compressor hums.", document_id="trane", manufacturer="Trane", model="XR14", equipment_type="split_system_ac", category="troubleshooting"),
    chunk("f1", "Furnace: a dirty flame sensor makes the burners drop out.", document_id="furnace", manufacturer="Lennox", model="SL280", equipment_type="gas_furnace", category="troubleshooting"),
]


def _index(chunks: list[Chunk] = CHUNKS, **kwargs: int) -> KnowledgeIndex:
    index = KnowledgeIndex(EMBEDDER.dim, embedder_name=EMBEDDER.name, **kwargs)
    index.add(chunks, EMBEDDER.embed([c.embed_text for c in chunks]))
    return index


def _search(index: KnowledgeIndex, text: str, k: int = 5, **filters: str) -> list[str]:
    return [r.chunk_id for r in index.search(EMBEDDER.embed([text])[0], text, k, SearchFilters(**filters))]


def test_search_returns_the_documented_result_shape() -> None:
    (best, *_) = _index().search(EMBEDDER.embed(["compressor hums"])[0], "compressor hums", 3)
    assert best.chunk_id in {"c1", "t1"}
    assert best.citation == {"source": f"{'carrier' if best.chunk_id == 'c1' else 'trane'} manual", "page": 1, "document_id": best.metadata["document_id"]}
    assert best.text.endswith("when the compressor hums.")
    assert best.score > 0
    assert {"heading", "manufacturer", "model", "equipment_type", "category", "tenant_id", "updated_at", "dense_score", "lexical_score"} <= set(best.metadata)
    assert set(best.to_dict()) == {"chunk_id", "score", "text", "citation", "metadata"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"c1", "t1", "c2", "f1"}),
        ({"manufacturer": "carrier"}, {"c1", "c2"}),  # case-insensitive
        ({"manufacturer": "Carrier", "category": "maintenance"}, {"c2"}),
        ({"model": "XR14"}, {"t1"}),
        ({"equipment_type": "gas_furnace"}, {"f1"}),
        ({"manufacturer": "Daikin"}, set()),  # unknown value: nothing, not everything
        ({"manufacturer": "Carrier", "model": "XR14"}, set()),
    ],
)
def test_metadata_filters(filters: dict[str, str], expected: set[str]) -> None:
    assert set(_search(_index(), "compressor capacitor coil flame sensor condenser", 10, **filters)) <= expected
    got = set(_search(_index(), "condenser compressor capacitor coil furnace flame", 10, **filters))
    assert got == expected


def test_blank_filters_mean_no_filter_and_non_strings_are_refused() -> None:
    assert SearchFilters(manufacturer="  ", tenant_id="") == SearchFilters()
    with pytest.raises(InvalidInput, match="manufacturer must be a string"):
        SearchFilters(manufacturer=3)  # type: ignore[arg-type]


def test_remove_document_removes_its_chunks_everywhere() -> None:
    index = _index()
    assert index.remove_document("carrier") == 2
    assert index.remove_document("carrier") == 0
    assert len(index) == 2 and not index.has_document("carrier") and index.get("c1") is None
    assert index.statistics()["dense_vectors"] == 2
    assert "c1" not in _search(index, "Carrier run capacitor compressor hums", 10)
    assert index.lexical_stats(["carrier"]).df.get("carrier", 0) == 0
    # Its ids can be indexed again (a new upload of the same manual).
    index.add(CHUNKS[:2], EMBEDDER.embed([c.embed_text for c in CHUNKS[:2]]))
    assert _search(index, "Carrier spring coil", 1) == ["c2"]


def test_duplicate_chunk_ids_conflict_and_nothing_is_stored() -> None:
    index = _index()
    with pytest.raises(Conflict):
        index.add([CHUNKS[0]], EMBEDDER.embed([CHUNKS[0].embed_text]))
    assert len(index) == 4 and index.statistics()["dense_vectors"] == 4


def test_wrong_vector_shape_is_refused_and_nothing_is_stored() -> None:
    index = KnowledgeIndex(EMBEDDER.dim)
    with pytest.raises(InvalidInput, match="shape"):
        index.add(CHUNKS, np.zeros((len(CHUNKS), EMBEDDER.dim + 1), np.float32))
    with pytest.raises(InvalidInput, match="shape"):
        index.add(CHUNKS, np.zeros((1, EMBEDDER.dim), np.float32))
    assert len(index) == 0


@pytest.mark.parametrize("k", [0, 51])
def test_k_out_of_range_is_refused(k: int) -> None:
    with pytest.raises(InvalidInput, match="k must be"):
        _search(_index(), "capacitor", k)


def test_empty_question_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        _search(_index(), "   ")


def test_tenant_visibility_inside_one_index() -> None:
    chunks = [
        chunk("g", "global manual: reset the igniter", document_id="g"),
        chunk("a", "tenant a manual: reset the igniter", document_id="a", tenant_id="tenant-a"),
        chunk("b", "tenant b manual: reset the igniter", document_id="b", tenant_id="tenant-b"),
    ]
    index = _index(chunks)
    assert set(_search(index, "reset igniter", 10)) == {"g"}
    assert set(_search(index, "reset igniter", 10, tenant_id="tenant-a")) == {"g", "a"}
    assert set(_search(index, "tenant b manual reset igniter", 10, tenant_id="tenant-a")) == {"g", "a"}
    assert set(_search(index, "reset igniter", 10, tenant_id="tenant-c")) == {"g"}


def test_knowledge_base_isolates_tenants() -> None:
    kb = KnowledgeBase(EMBEDDER)
    meta = DocumentMeta(source="Igniter notes")
    kb.ingest(b"# Igniter\n\nGlobal: the igniter reads 40 to 75 ohms.", filename="g.md", tenant_id=None, meta=meta)
    kb.ingest(b"# Igniter\n\nAlpha Heating: our igniter stock code is IGN-7.", filename="a.md", tenant_id="alpha", meta=meta)
    kb.ingest(b"# Igniter\n\nBeta Air: our igniter stock code is BX-9.", filename="b.md", tenant_id="beta", meta=meta)

    def texts(tenant: str | None) -> set[str]:
        return {r.text.split(":")[0] for r in kb.search("igniter stock code ohms", k=10, filters=SearchFilters(tenant_id=tenant))}

    assert texts(None) == {"Global"}
    assert texts("alpha") == {"Global", "Alpha Heating"}
    assert texts("beta") == {"Global", "Beta Air"}
    assert texts("gamma") == {"Global"}
    assert kb.shard("alpha").tenants() == {"alpha"} and kb.shard(None).tenants() == {None}


def test_knowledge_base_ingest_replaces_versions_and_is_idempotent() -> None:
    kb = KnowledgeBase(EMBEDDER)
    v1 = kb.ingest(b"# Charging\n\nTarget subcooling 10 F.", filename="m.md", tenant_id="t", document_id="manual-1", meta=DocumentMeta(source="M"))
    again = kb.ingest(b"# Charging\n\nTarget subcooling 10 F.", filename="m.md", tenant_id="t", document_id="manual-1", meta=DocumentMeta(source="M"))
    assert not v1.replaced and again.unchanged and again.chunks == v1.chunks
    v2 = kb.ingest(b"# Charging\n\nTarget subcooling 12 F.", filename="m.md", tenant_id="t", document_id="manual-1", meta=DocumentMeta(source="M"))
    assert v2.replaced and v2.content_hash != v1.content_hash
    (only,) = kb.search("target subcooling", filters=SearchFilters(tenant_id="t"))
    assert "12 F" in only.text
    assert kb.remove_document("manual-1", tenant_id="t") == 1
    with pytest.raises(NotFound):
        kb.remove_document("manual-1", tenant_id="t")
    with pytest.raises(NotFound):
        kb.remove_document("manual-1", tenant_id="someone-else")


def test_ingest_takes_metadata_from_front_matter_but_tenant_from_the_caller() -> None:
    kb = KnowledgeBase(EMBEDDER)
    doc = b"---\nsource: Acme AC100 Manual\nmanufacturer: Acme\ntenant_id: evil\n---\n# Specs\n\nThree tons."
    report = kb.ingest(doc, filename="acme.md", tenant_id="t1")
    (result,) = kb.search("three tons", filters=SearchFilters(tenant_id="t1"))
    assert result.citation["source"] == "Acme AC100 Manual"
    assert result.metadata["manufacturer"] == "Acme" and result.metadata["tenant_id"] == "t1"
    assert result.metadata["document_id"] == report.content_hash
    with pytest.raises(InvalidInput, match="tenant"):
        kb.ingest(doc, filename="acme.md", tenant_id="t1", meta=DocumentMeta(source="x", tenant_id="t2"))


def test_serialization_round_trip_flat() -> None:
    index = _index()
    blob = index.to_bytes()
    loaded = KnowledgeIndex.from_bytes(blob, embedder_name=EMBEDDER.name)
    assert len(loaded) == len(index) and loaded.get("c2") == index.get("c2")
    for query in ("compressor hums capacitor", "flame sensor", "spring coil cleaning"):
        vec = EMBEDDER.embed([query])[0]
        assert [r.to_dict() for r in loaded.search(vec, query, 4)] == [r.to_dict() for r in index.search(vec, query, 4)]
    # The loaded index keeps working: remove and add.
    assert loaded.remove_document("trane") == 1
    loaded.add([chunk("n1", "new note about the reversing valve", document_id="new")], EMBEDDER.embed(["new note about the reversing valve"]))
    assert _search(loaded, "reversing valve", 1) == ["n1"]


def _many_chunks(n: int, tenant: str | None = None) -> list[Chunk]:
    rng = np.random.default_rng(3)
    words = "compressor capacitor contactor igniter flame sensor inducer pressure switch coil fan motor valve drier filter".split()
    return [
        chunk(
            f"m{i}",
            " ".join(rng.choice(words, 12)) + f" code Z{i}",
            document_id=f"d{i // 10}",
            page=i % 10 + 1,
            manufacturer=["Carrier", "Trane", "Goodman"][i % 3],
            tenant_id=tenant,
        )
        for i in range(n)
    ]


def test_ivf_mode_round_trip_remove_and_filtered_exactness() -> None:
    chunks = _many_chunks(3000)
    index = _index(chunks, ivf_threshold=1000)
    assert index.statistics()["dense_kind"] == "ivf"
    assert _search(index, "code Z1234", 1) == ["m1234"]
    loaded = KnowledgeIndex.from_bytes(index.to_bytes())
    assert loaded.statistics()["dense_kind"] == "ivf"
    assert _search(loaded, "code Z1234", 1) == ["m1234"]
    assert loaded.remove_document("d123") == 10
    assert "m1234" not in _search(loaded, "code Z1234", 10)
    assert loaded.statistics()["dense_vectors"] == 2990
    # A selective filter (one manufacturer's 1/3) still returns only, and
    # enough of, the allowed chunks.
    got = loaded.search(EMBEDDER.embed(["igniter flame"])[0], "igniter flame", 20, SearchFilters(manufacturer="Trane"))
    assert len(got) == 20 and {r.metadata["manufacturer"] for r in got} == {"Trane"}


def test_dense_vectors_survive_ivf_conversion_and_retraining() -> None:
    chunks = _many_chunks(1200)
    vectors = EMBEDDER.embed([c.embed_text for c in chunks])
    index = KnowledgeIndex(EMBEDDER.dim, ivf_threshold=300)
    index.add(chunks[:300], vectors[:300])  # converts to IVF at 300
    index.add(chunks[300:], vectors[300:])  # 4x growth: retrains
    ids, stored = index._dense.vectors()
    order = np.argsort(ids)
    assert list(ids[order]) == list(range(1200))
    # 8-bit quantisation (ranges trained on the first 300 vectors) keeps
    # every vector's direction.
    cosines = np.sum(stored[order] * vectors, axis=1) / np.linalg.norm(stored[order], axis=1)
    assert cosines.min() > 0.99


def test_ivf_filtered_search_is_exact_for_a_small_allowed_set() -> None:
    from ensemble.knowledge._dense import DenseIndex

    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((4000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = DenseIndex(32, ivf_threshold=1000)
    dense.add(np.arange(4000), vectors)
    assert dense.kind == "ivf"
    allowed = np.zeros(4000, dtype=bool)
    allowed[rng.choice(4000, 60, replace=False)] = True
    for q in vectors[:20] * -1.0:  # queries unrelated to any one stored vector
        ids, _ = dense.search(q, 10, allowed)
        candidates = np.flatnonzero(allowed)
        exact = candidates[np.argsort(-(vectors[candidates] @ q))[:10]]
        assert set(ids.tolist()) <= set(candidates.tolist())
        assert len(set(ids.tolist()) & set(exact.tolist())) >= 9  # SQ8 may swap a near tie


@pytest.mark.parametrize(
    "blob",
    [b"", b"not msgpack at all \xc1", b"\x81\xa6format\xa4nope"],
    ids=["empty", "junk", "wrong-format"],
)
def test_damaged_blob_is_refused(blob: bytes) -> None:
    with pytest.raises(InvalidInput):
        KnowledgeIndex.from_bytes(blob)


def test_blob_with_damaged_faiss_part_is_refused() -> None:
    import msgpack

    raw = msgpack.unpackb(_index().to_bytes(), raw=False)
    raw["dense"] = raw["dense"][:50]
    with pytest.raises(InvalidInput, match="damaged"):
        KnowledgeIndex.from_bytes(msgpack.packb(raw, use_bin_type=True))


def test_blob_from_another_embedder_is_refused() -> None:
    blob = _index().to_bytes()
    with pytest.raises(ConfigError, match="re-ingest"):
        KnowledgeIndex.from_bytes(blob, embedder_name=HashingEmbedder(dim=256).name)
    kb = KnowledgeBase(HashingEmbedder(dim=256))
    with pytest.raises(ConfigError):
        kb.attach(None, KnowledgeIndex.from_bytes(blob))


def test_knowledge_base_blobs_restore_every_shard() -> None:
    kb = KnowledgeBase(EMBEDDER)
    kb.add_chunks(CHUNKS)
    kb.add_chunks([chunk("a1", "tenant note: the capacitor is in van 3", document_id="a", tenant_id="alpha")])
    restored = KnowledgeBase(EMBEDDER)
    for tenant, blob in kb.to_blobs().items():
        restored.attach(tenant, KnowledgeIndex.from_bytes(blob, embedder_name=EMBEDDER.name))
    for tenant in (None, "alpha"):
        f = SearchFilters(tenant_id=tenant)
        assert [r.chunk_id for r in restored.search("capacitor van", k=5, filters=f)] == [
            r.chunk_id for r in kb.search("capacitor van", k=5, filters=f)
        ]
    with pytest.raises(InvalidInput, match="other tenants"):
        restored.attach("beta", KnowledgeIndex.from_bytes(kb.to_blobs()["alpha"]))


def test_add_chunks_of_two_tenants_at_once_is_refused() -> None:
    kb = KnowledgeBase(EMBEDDER)
    with pytest.raises(InvalidInput, match="one tenant"):
        kb.add_chunks([chunk("x", "a", tenant_id="a"), chunk("y", "b", tenant_id="b")])


def test_refused_upload_leaves_no_trace() -> None:
    kb = KnowledgeBase(EMBEDDER)
    with pytest.raises(InvalidInput):
        kb.ingest(b"%PDF-1.4 broken", filename="x.pdf", tenant_id="t1")
    with pytest.raises(InvalidInput):
        kb.ingest(b"---\nsource: S\n---\n# Only a heading\n", filename="x.md", tenant_id="t1")
    assert kb.shards() == []


def test_same_bytes_under_another_document_id_conflict() -> None:
    kb = KnowledgeBase(EMBEDDER)
    data = b"# Specs\n\nThree tons."
    kb.ingest(data, filename="a.md", tenant_id=None, document_id="first")
    with pytest.raises(Conflict):
        kb.ingest(data, filename="a.md", tenant_id=None, document_id="second")
    assert kb.shard(None).document_ids() == ["first"]


def test_replace_document_keeps_the_old_version_when_the_new_one_is_refused() -> None:
    index = _index()
    new = [chunk("c9", "Carrier: new page", document_id="carrier")]
    with pytest.raises(InvalidInput, match="shape"):
        index.replace_document("carrier", new, np.zeros((2, EMBEDDER.dim), np.float32))
    with pytest.raises(InvalidInput, match="belong"):
        index.replace_document("carrier", [CHUNKS[2]], EMBEDDER.embed([CHUNKS[2].embed_text]))
    with pytest.raises(Conflict):  # "t1" is the Trane document's chunk id
        index.replace_document("carrier", [chunk("t1", "x", document_id="carrier")], EMBEDDER.embed(["x"]))
    assert index.document_chunk_count("carrier") == 2
    assert index.replace_document("carrier", new, EMBEDDER.embed([new[0].embed_text])) == 2
    assert index.document_chunk_count("carrier") == 1 and index.get("c9") == new[0]
    # Re-using the replaced document's own chunk ids is fine.
    assert index.replace_document("carrier", CHUNKS[:2], EMBEDDER.embed([c.embed_text for c in CHUNKS[:2]])) == 1
