"""What only the local-filesystem backend has: its files, its URLs, its key."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from ensemble.config import Settings
from ensemble.errors import ConfigError, Conflict, Forbidden
from ensemble.persistence.objects import (
    URL_PREFIX,
    LocalObjectStore,
    load_signing_key,
    open_object_store,
    tenant_key,
)

MakeSettings = Callable[..., Settings]


@pytest.fixture
def local_settings(tmp_path: Path, make_settings: MakeSettings) -> Settings:
    return make_settings("local", tmp_path)


@pytest.fixture
async def local(local_settings: Settings) -> AsyncIterator[LocalObjectStore]:
    async with open_object_store(local_settings, None) as store:
        assert isinstance(store, LocalObjectStore)
        yield store


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def split_signed(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    assert parts.path.startswith(URL_PREFIX)
    query = parse_qs(parts.query)
    return unquote(parts.path[len(URL_PREFIX) :]), query["expires"][0], query["sig"][0]


# -- signed URLs ---------------------------------------------------------------------


async def test_signed_url_verifies_until_it_expires(local: LocalObjectStore) -> None:
    key = tenant_key("t1", "sessions", "s1", "photo 1.jpg")
    await local.put(key, b"jpeg")
    url = await local.signed_url(key, 60)
    got_key, expires, sig = split_signed(url)
    assert got_key == key

    local.verify_signed_url(got_key, expires, sig)
    local.verify_signed_url(got_key, expires, sig, now=int(expires) - 1)
    with pytest.raises(Forbidden, match="expired"):
        local.verify_signed_url(got_key, expires, sig, now=int(expires))
    with pytest.raises(Forbidden, match="expired"):
        local.verify_signed_url(got_key, expires, sig, now=int(expires) + 3600)


async def test_tampered_signed_urls_are_refused(local: LocalObjectStore) -> None:
    key = tenant_key("t1", "a.jpg")
    got_key, expires, sig = split_signed(await local.signed_url(key, 60))
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    for args in [
        (got_key, expires, flipped),
        (got_key, expires, sig[:-1]),
        (got_key, expires, ""),
        (tenant_key("t2", "a.jpg"), expires, sig),  # same signature, another tenant's key
        (got_key, str(int(expires) + 3600), sig),  # extended expiry
        (got_key, "soon", sig),
    ]:
        with pytest.raises(Forbidden):
            local.verify_signed_url(*args)


async def test_signing_key_is_generated_once_private_and_reused(
    local_settings: Settings, make_settings: MakeSettings
) -> None:
    key_file = Path(local_settings.data_dir) / "signing.key"
    async with open_object_store(local_settings, None) as first:
        assert isinstance(first, LocalObjectStore)
        url = await first.signed_url(tenant_key("t1", "a"), 60)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert await load_signing_key(local_settings) == await load_signing_key(local_settings)
    async with open_object_store(local_settings, None) as second:
        assert isinstance(second, LocalObjectStore)
        second.verify_signed_url(*split_signed(url))  # survives a restart

    configured = make_settings("local", Path(local_settings.data_dir), signing_key="k" * 32)
    async with open_object_store(configured, None) as third:
        assert isinstance(third, LocalObjectStore)
        with pytest.raises(Forbidden):
            third.verify_signed_url(*split_signed(url))  # the configured key wins


async def test_short_configured_signing_key_is_a_config_error(tmp_path: Path, make_settings: MakeSettings) -> None:
    with pytest.raises(ConfigError):
        await load_signing_key(make_settings("local", tmp_path, signing_key="short"))


# -- files on disk -------------------------------------------------------------------


async def test_layout_and_overwrite_leave_no_garbage(local: LocalObjectStore) -> None:
    root = Path(local.root)
    key = tenant_key("t1", "docs", "a.pdf")
    await local.put(key, b"one", content_type="application/pdf")
    await local.put(key, b"two", content_type="application/pdf")
    files = files_under(root)
    assert "keys/tenants/t1/docs/a.pdf" in files
    assert len([f for f in files if f.startswith("blobs/")]) == 1  # the replaced blob is gone
    assert not any(f.startswith("tmp/") for f in files)
    await local.delete(key)
    assert files_under(root) == []
    assert not (root / "keys" / "tenants").exists()  # empty directories are pruned


async def test_failed_put_leaves_no_files(local: LocalObjectStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(3 << 20)  # past the write buffer: bytes reach the temp file
        raise OSError("client went away")

    with pytest.raises(OSError):
        await local.put(tenant_key("t1", "x.bin"), broken())
    assert files_under(Path(local.root)) == []


async def test_leftovers_of_a_crashed_put_are_cleared_on_open(local_settings: Settings) -> None:
    tmp = Path(local_settings.data_dir) / "objects" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "0123abcd").write_bytes(b"half an upload")
    async with open_object_store(local_settings, None):
        assert list(tmp.iterdir()) == []


async def test_object_and_prefix_collision_is_a_conflict(local: LocalObjectStore) -> None:
    await local.put(tenant_key("t1", "a"), b"file")
    with pytest.raises(Conflict):
        await local.put(tenant_key("t1", "a", "b"), b"under a file")
    await local.put(tenant_key("t1", "d", "x"), b"x")
    with pytest.raises(Conflict):
        await local.put(tenant_key("t1", "d"), b"over a directory")
    assert [o.key for o in await local.list("")] == [tenant_key("t1", "a"), tenant_key("t1", "d", "x")]
    assert not any(p.startswith(("tmp/", "blobs/")) and p.count("/") < 1 for p in files_under(Path(local.root)))
    assert len([p for p in files_under(Path(local.root)) if p.startswith("blobs/")]) == 2


async def test_symlinks_out_of_the_root_are_refused(local: LocalObjectStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    keys = Path(local.root) / "keys" / "tenants"
    keys.mkdir(parents=True)
    os.symlink(outside, keys / "evil")  # a directory symlink planted inside the key tree
    os.symlink(outside / "passwd", keys / "leaf")  # and a file symlink

    with pytest.raises(Forbidden):
        await local.get_bytes("tenants/evil/passwd")
    with pytest.raises(Forbidden):
        await local.head("tenants/evil/passwd")
    with pytest.raises(Forbidden):
        await local.put("tenants/evil/new.txt", b"escape")
    with pytest.raises(Forbidden):
        await local.delete("tenants/evil/passwd")
    with pytest.raises(Forbidden):
        await local.list("tenants/evil/")
    with pytest.raises(Forbidden):
        await local.head("tenants/leaf")
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]
    assert (outside / "passwd").read_text() == "root:x:0:0"
    assert await local.list("") == []  # symlinks are never listed as objects


async def test_not_writable_when_the_disk_refuses(local: LocalObjectStore) -> None:
    tmp = Path(local.root) / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"a file where the temp dir should be")  # works even as root, unlike chmod
    assert await local.writable() is False
