"""The object store contract: every test here runs against both backends."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import trio

from ensemble.errors import Forbidden, InvalidInput, NotFound
from ensemble.persistence.objects import (
    ObjectInfo,
    ObjectStore,
    S3ObjectStore,
    global_key,
    tenant_key,
)

MiB = 1 << 20


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await trio.lowlevel.checkpoint()
        yield data[start : start + size]


async def all_keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [o.key for o in await store.list(prefix)]


# -- round trips ---------------------------------------------------------------------


async def test_put_head_get_list_delete_round_trip(store: ObjectStore) -> None:
    key = tenant_key("t1", "sessions", "s-123", "photo-1.jpg")
    data = b"\xff\xd8 not really a jpeg \x00\x01"
    meta = {"uploaded-by": "user-7", "session": "s-123"}

    put = await store.put(key, data, content_type="image/jpeg", metadata=meta)
    assert (put.key, put.size, put.content_type, put.metadata) == (key, len(data), "image/jpeg", meta)
    assert put.etag and isinstance(put.last_modified, datetime) and put.last_modified.tzinfo is not None

    head = await store.head(key)
    assert head == put

    stream = await store.get(key)
    assert stream.info == put
    assert await stream.read_all() == data
    assert await store.get_bytes(key) == data

    [listed] = await store.list(tenant_key("t1", "sessions") + "/")
    assert (listed.key, listed.size, listed.etag) == (key, len(data), put.etag)
    assert not isinstance(listed, ObjectInfo)  # listings carry no content type/metadata

    await store.delete(key)
    with pytest.raises(NotFound):
        await store.head(key)
    assert await all_keys(store) == []


async def test_put_from_async_iterable_and_empty_object(store: ObjectStore) -> None:
    key = tenant_key("t1", "notes.txt")
    info = await store.put(key, chunks_of(b"hello, " * 1000, 7), content_type="text/plain; charset=utf-8")
    assert info.size == 7000
    assert info.content_type == "text/plain; charset=utf-8"
    assert info.metadata == {}
    assert await store.get_bytes(key) == b"hello, " * 1000

    empty = tenant_key("t1", "empty.bin")
    assert (await store.put(empty, b"")).size == 0
    assert await store.get_bytes(empty) == b""
    assert (await store.head(empty)).content_type == "application/octet-stream"


async def test_overwrite_replaces_bytes_and_metadata(store: ObjectStore) -> None:
    key = global_key("manuals", "carrier", "24ACC6-service-manual.pdf")
    first = await store.put(key, b"v1", content_type="application/pdf", metadata={"rev": "1"})
    second = await store.put(key, b"version two", content_type="text/plain", metadata={"rev": "2"})
    assert first.etag != second.etag
    head = await store.head(key)
    assert (head.size, head.content_type, head.metadata) == (11, "text/plain", {"rev": "2"})
    assert await store.get_bytes(key) == b"version two"
    assert await all_keys(store) == [key]


async def test_streaming_get_of_a_multi_mib_object(store: ObjectStore) -> None:
    key = tenant_key("t1", "videos", "walkthrough.mp4")
    data = os.urandom(20 * MiB + 12345)  # > 2 parts on S3: the multipart path
    info = await store.put(key, chunks_of(data, 3 * MiB), content_type="video/mp4", metadata={"k": "v"})
    assert info.size == len(data)
    assert (await store.head(key)).metadata == {"k": "v"}

    digest = hashlib.sha256()
    sizes = []
    async with await store.get(key) as stream:
        assert stream.info.size == len(data)
        async for chunk in stream:
            assert len(chunk) <= stream.chunk_size
            sizes.append(len(chunk))
            digest.update(chunk)
    assert sum(sizes) == len(data) and len(sizes) > 1
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_large_bytes_put_and_early_close_of_a_stream(store: ObjectStore) -> None:
    key = tenant_key("t1", "big.bin")
    data = os.urandom(9 * MiB)  # bytes over one part: multipart from memory on S3
    assert (await store.put(key, data)).size == len(data)
    stream = await store.get(key)
    first = await stream.__anext__()
    assert first == data[: len(first)]
    await stream.aclose()  # an abandoned download must release its file/connection
    await stream.aclose()  # and closing twice is harmless
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    assert await store.get_bytes(key) == data


async def test_failed_streaming_put_stores_nothing_and_keeps_the_old_object(store: ObjectStore) -> None:
    key = tenant_key("t1", "upload.bin")
    await store.put(key, b"old")

    class UploadBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(9 * MiB)  # far enough to start a multipart upload on S3
        raise UploadBroke

    with pytest.raises(UploadBroke):
        await store.put(key, broken())
    with pytest.raises(UploadBroke):
        await store.put(tenant_key("t1", "never.bin"), broken())
    assert await store.get_bytes(key) == b"old"
    assert await all_keys(store) == [key]


async def stalled_upload(started: trio.Event) -> AsyncIterator[bytes]:
    """Two S3 parts' worth (so a multipart upload is under way), then a client that stalls."""
    yield os.urandom(17 * MiB)
    started.set()
    await trio.sleep_forever()


async def test_cancelled_put_stores_nothing(store: ObjectStore) -> None:
    key = tenant_key("t1", "upload.bin")
    await store.put(key, b"old")
    for target in (key, tenant_key("t1", "never.bin")):
        started = trio.Event()
        async with trio.open_nursery() as nursery:

            async def cancel_when_stalled() -> None:
                await started.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(cancel_when_stalled)
            await store.put(target, stalled_upload(started))
        assert nursery.cancel_scope.cancelled_caught
    assert await store.get_bytes(key) == b"old"
    assert await all_keys(store) == [key]


# -- listing -------------------------------------------------------------------------


async def test_list_pages_in_key_order_with_prefixes(store: ObjectStore) -> None:
    keys = [tenant_key("t1", "photos", f"p{i:02d}.jpg") for i in range(7)]
    keys += [
        tenant_key("t1", "docs", "a.pdf"),
        tenant_key("t1", "docs", "sub", "b.pdf"),
        tenant_key("t1", "photos-old.jpg"),  # "-" sorts before "/": tests the walk order
        tenant_key("t1", "photos.txt"),  # "." sorts before "/" too
        tenant_key("t10", "x.bin"),
        global_key("manuals", "trane", "XR13.pdf"),
    ]
    for key in reversed(keys):
        await store.put(key, key.encode())

    assert await all_keys(store) == sorted(keys)
    assert await all_keys(store, "tenants/t1/") == sorted(k for k in keys if k.startswith("tenants/t1/"))
    assert await all_keys(store, "tenants/t1") == sorted(k for k in keys if k.startswith("tenants/t1"))
    assert await all_keys(store, "tenants/t1/photos") == sorted(k for k in keys if "/t1/photos" in k)
    assert await all_keys(store, "tenants/t1/docs/") == [tenant_key("t1", "docs", "a.pdf"), tenant_key("t1", "docs", "sub", "b.pdf")]
    assert await all_keys(store, "tenants/t2/") == []
    assert await all_keys(store, "manuals/") == [global_key("manuals", "trane", "XR13.pdf")]

    photos = "tenants/t1/photos/"
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.list(photos, limit=3, start_after=after)
        pages.append([o.key for o in page])
        if len(page) < 3:
            break
        after = page[-1].key
    assert pages == [keys[0:3], keys[3:6], keys[6:7]]

    everything = sorted(keys)
    assert await all_keys(store) == everything
    for i, key in enumerate(everything):  # start_after at every position, including mid-directory
        assert [o.key for o in await store.list("", start_after=key)] == everything[i + 1 :]
    # start_after need not be an existing key
    assert [o.key for o in await store.list("", start_after="tenants/t1/photos/")] == everything[
        everything.index(keys[0]) :
    ]


@pytest.mark.parametrize("limit", [0, -1, 1001, True, 2.5])
async def test_list_limit_is_bounded(store: ObjectStore, limit: object) -> None:
    with pytest.raises(InvalidInput):
        await store.list("tenants/", limit=limit)  # type: ignore[arg-type]


# -- bad keys ------------------------------------------------------------------------

BAD_KEYS = {
    "parent": "../etc/passwd",
    "parent inside": "tenants/t1/../t2/secret.pdf",
    "parent at end": "tenants/t1/..",
    "dot segment": "tenants/./t1/x",
    "encoded parent": "tenants/t1/%2e%2e/t2/x",
    "encoded slash": "tenants/t1/..%2ft2%2fx",
    "double encoded": "%252e%252e/etc/passwd",
    "absolute": "/etc/passwd",
    "absolute tenant": "/tenants/t1/x",
    "backslash": "tenants\\t1\\x",
    "backslash parent": "tenants/t1/..\\..\\x",
    "nul": "tenants/t1/a\x00.jpg",
    "newline": "tenants/t1/a\nb",
    "c1 control": "tenants/t1/a\x85b",
    "del": "tenants/t1/a\x7f",
    "empty": "",
    "empty segment": "tenants//t1/x",
    "trailing slash": "tenants/t1/x/",
    "only slash": "/",
    "too long": "tenants/t1/" + "/".join(["a" * 200] * 6),
    "segment too long": "tenants/t1/" + "a" * 256,
    "lone surrogate": "tenants/t1/\udc80",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_bad_keys_are_rejected_before_any_io(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        await store.put(key, b"x")
    with pytest.raises(InvalidInput):
        await store.put(key, chunks_of(b"x", 1))
    with pytest.raises(InvalidInput):
        await store.get(key)
    with pytest.raises(InvalidInput):
        await store.head(key)
    with pytest.raises(InvalidInput):
        await store.delete(key)
    with pytest.raises(InvalidInput):
        await store.signed_url(key, 60)
    assert await all_keys(store) == []


@pytest.mark.parametrize("key", [None, b"tenants/t1/x", 42])
async def test_non_string_keys_are_rejected(store: ObjectStore, key: object) -> None:
    with pytest.raises(InvalidInput):
        await store.put(key, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await store.head(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["/tenants", "../", "tenants/../", "tenants//", "a\\b", "tenants/%2e%2e/"])
async def test_bad_list_prefixes_are_rejected(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        await store.list(prefix)


@pytest.mark.parametrize(
    ("content_type", "metadata"),
    [
        ("not a type", {}),
        ("", {}),
        ("text/plain\r\nx-injected: 1", {}),
        ("text/plain", {"Upper": "x"}),
        ("text/plain", {"with space": "x"}),
        ("text/plain", {"ok": "caf\u00e9"}),
        ("text/plain", {"ok": " padded"}),
        ("text/plain", {"ok": "line\nbreak"}),
        ("text/plain", {"big": "x" * 2100}),
    ],
)
async def test_bad_content_type_or_metadata_stores_nothing(
    store: ObjectStore, content_type: str, metadata: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput):
        await store.put(tenant_key("t1", "x"), b"x", content_type=content_type, metadata=metadata)
    assert await all_keys(store) == []


# -- tenants -------------------------------------------------------------------------


async def test_scoped_view_refuses_other_tenants(store: ObjectStore) -> None:
    theirs = tenant_key("t2", "secret.pdf")
    await store.put(theirs, b"t2 only", metadata={"owner": "t2"})
    mine = store.scoped("t1")

    own = tenant_key("t1", "mine.txt")
    await mine.put(own, b"t1 data")
    assert await mine.get_bytes(own) == b"t1 data"
    assert [o.key for o in await mine.list("tenants/t1/")] == [own]

    outside = [
        theirs,
        tenant_key("t10", "x"),  # shares the string prefix "tenants/t1"
        global_key("manuals", "carrier", "x.pdf"),
        "tenants/t1",  # the tenant directory itself is not inside it
    ]
    for key in outside:
        with pytest.raises(Forbidden):
            await mine.get(key)
        with pytest.raises(Forbidden):
            await mine.head(key)
        with pytest.raises(Forbidden):
            await mine.put(key, b"overwrite attempt")
        with pytest.raises(Forbidden):
            await mine.delete(key)
        with pytest.raises(Forbidden):
            await mine.signed_url(key, 60)
    for prefix in ["", "tenants/", "tenants/t1", "tenants/t2/"]:
        with pytest.raises(Forbidden):
            await mine.list(prefix)
    with pytest.raises(Forbidden):
        mine.scoped("t2")
    # validation still comes first: traversal out of the tenant is a bad key
    with pytest.raises(InvalidInput):
        await mine.get("tenants/t1/../t2/secret.pdf")

    assert await store.get_bytes(theirs) == b"t2 only"
    assert (await store.head(theirs)).metadata == {"owner": "t2"}
    assert await all_keys(store) == [own, theirs]
    assert await mine.writable()


# -- missing keys ----------------------------------------------------------------------


async def test_missing_keys_are_not_found_and_delete_is_idempotent(store: ObjectStore) -> None:
    key = tenant_key("t1", "nope.jpg")
    for call in (store.get, store.head, store.get_bytes):
        with pytest.raises(NotFound) as caught:
            await call(key)
        assert key in caught.value.message
    await store.delete(key)  # missing: no error
    await store.put(key, b"x")
    await store.delete(key)
    await store.delete(key)
    with pytest.raises(NotFound):
        await store.head(key)
    # a "directory" that only holds other objects is not an object either
    await store.put(tenant_key("t1", "dir", "inner.txt"), b"x")
    with pytest.raises(NotFound):
        await store.head(tenant_key("t1", "dir"))


# -- signed URLs and health ----------------------------------------------------------


@pytest.mark.parametrize("expires_in_s", [0, -5, 7 * 24 * 3600 + 1, 1.5])
async def test_signed_url_expiry_is_bounded(store: ObjectStore, expires_in_s: object) -> None:
    with pytest.raises(InvalidInput):
        await store.signed_url(tenant_key("t1", "x"), expires_in_s)  # type: ignore[arg-type]


async def test_signed_url_names_the_key(store: ObjectStore) -> None:
    key = tenant_key("t1", "sessions", "a b+c.jpg")
    await store.put(key, b"x")
    url = await store.signed_url(key, 300)
    expected = "a%20b%2Bc.jpg"
    assert expected in url
    if isinstance(store, S3ObjectStore):
        assert "X-Amz-Expires=300" in url
    else:
        assert url.startswith("/api/v1/objects/tenants/t1/sessions/")


async def test_writable(store: ObjectStore) -> None:
    assert await store.writable() is True
    assert await all_keys(store, "tenants/") == []  # the probe leaves no tenant-visible trace
