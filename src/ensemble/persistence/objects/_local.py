"""The local-filesystem object store (the default).

Theory of operation
-------------------
Under the root (``{data_dir}/objects``) there are three trees::

    keys/<key>          one sidecar JSON per object: content type, metadata,
                        size, sha256, last_modified and the id of its blob
    blobs/<ab>/<id>     the bytes, under a random id (never a user-derived name)
    tmp/                files being written; emptied when the store opens

A put streams the body into ``tmp/``, fsyncs it, renames it into ``blobs/``,
writes the sidecar to ``tmp/``, fsyncs it, and then *commits* by renaming the
sidecar over ``keys/<key>``.  That one rename is the atomic switch: a reader
sees the old sidecar (and its old blob) or the new one, never a mix, and a
crash before it leaves only unreferenced files behind.  After the commit the
old blob is unlinked; a reader that already opened it keeps reading it (POSIX
keeps unlinked files alive), and a reader that read the old sidecar but had
not opened the blob yet re-reads the sidecar and retries.

Commits and deletes mutate ``keys/`` under one lock (create parent dirs,
rename, unlink the replaced blob, prune empty dirs), so a delete never removes
a directory a concurrent put is about to use.  Only this process writes here.

Defence in depth: keys are validated before they reach this module, and every
path is still checked, after resolving symlinks, to lie inside the root;
sidecars and blobs are opened with ``O_NOFOLLOW``.  A filesystem cannot hold
both ``a`` and ``a/b`` as objects; that put raises ``Conflict`` (S3 allows it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import trio

from ensemble.errors import Conflict, Forbidden, NotFound, Unavailable

from ._base import ObjectInfo, ObjectStore, ObjectStream, SummaryPage, iter_body
from ._signing import UrlSigner

__all__ = ["LocalObjectStore", "open_local_store"]

WRITE_CHUNK_BYTES = 1 << 20  # gather small chunks so each thread hop writes a useful amount
_BLOB_ID = re.compile(r"^[0-9a-f]{32}$")
_OPEN_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class _Sidecar:
    info: ObjectInfo
    blob: str


# -- synchronous filesystem helpers (always called in a worker thread) ---------------


def _inside(path: str, root: str) -> str:
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise Forbidden("object path resolves outside the object store")
    return real


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_sidecar(path: str, key: str) -> _Sidecar | None:
    try:
        fd = os.open(path, _OPEN_READ)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink: never ours
            raise Forbidden(f"object {key!r} is a symlink; refusing to follow it") from None
        raise
    try:
        with os.fdopen(fd, "rb") as f:
            raw: dict[str, Any] = json.loads(f.read())
    except IsADirectoryError:  # Linux opens directories; it only objects on read
        return None
    except ValueError:
        raise Unavailable(f"object {key!r} has a corrupt sidecar") from None
    try:
        blob = str(raw["blob"])
        if not _BLOB_ID.match(blob):
            raise ValueError("bad blob id")
        info = ObjectInfo(
            key=key,
            size=int(raw["size"]),
            etag=str(raw["sha256"]),
            last_modified=datetime.fromisoformat(raw["last_modified"]),
            content_type=str(raw["content_type"]),
            metadata={str(k): str(v) for k, v in raw["metadata"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unavailable(f"object {key!r} has a corrupt sidecar") from None
    return _Sidecar(info, blob)


class _TempBlob:
    """A body being written to ``tmp/``: hashes and counts as it goes."""

    def __init__(self, tmp_dir: str) -> None:
        self.id = uuid.uuid4().hex
        self.path = os.path.join(tmp_dir, self.id)
        self._file: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 (closed in finish/discard)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _LocalStream(ObjectStream):
    def __init__(self, info: ObjectInfo, file: BinaryIO) -> None:
        super().__init__(info)
        self._file = file

    async def _read(self, max_bytes: int) -> bytes:
        return await trio.to_thread.run_sync(self._file.read, max_bytes)

    async def _close(self) -> None:
        # Closing a read-only local file does not block, and doing it inline
        # means a cancelled caller can never leak the descriptor.
        self._file.close()


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = os.path.realpath(root)
        self._keys = os.path.join(self.root, "keys")
        self._blobs = os.path.join(self.root, "blobs")
        self._tmp = os.path.join(self.root, "tmp")
        self._signer = signer
        self._commit_lock = trio.Lock()

    # -- paths -----------------------------------------------------------------------

    def _key_path(self, key: str) -> str:
        return os.path.join(self._keys, *key.split("/"))

    def _blob_path(self, blob: str) -> str:
        return os.path.join(self._blobs, blob[:2], blob)

    def _prepare_dirs(self) -> None:
        for path in (self._keys, self._blobs, self._tmp):
            os.makedirs(path, exist_ok=True)
        # Anything left in tmp/ is from a put that never committed.
        for entry in os.scandir(self._tmp):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    # -- put -------------------------------------------------------------------------

    async def _put(
        self, key: str, data: bytes | AsyncIterable[bytes], content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo:
        temp = await trio.to_thread.run_sync(_TempBlob, self._tmp)
        committed = False
        try:
            buffer = bytearray()
            async for chunk in iter_body(data):
                buffer += chunk
                if len(buffer) >= WRITE_CHUNK_BYTES:
                    await trio.to_thread.run_sync(temp.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await trio.to_thread.run_sync(temp.write, bytes(buffer))
            info = ObjectInfo(
                key=key,
                size=temp.size,
                etag=temp.sha256.hexdigest(),
                last_modified=datetime.now(timezone.utc),
                content_type=content_type,
                metadata=metadata,
            )
            sidecar_tmp = await trio.to_thread.run_sync(self._stage, temp, info)
            async with self._commit_lock:
                await trio.to_thread.run_sync(self._commit, key, sidecar_tmp, temp.id)
            committed = True
            return info
        finally:
            if not committed:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._abandon, temp)

    def _stage(self, temp: _TempBlob, info: ObjectInfo) -> str:
        """Make the blob durable under blobs/ and write the sidecar to tmp/."""
        temp.finish()
        blob_dir = os.path.dirname(self._blob_path(temp.id))
        os.makedirs(blob_dir, exist_ok=True)
        os.rename(temp.path, self._blob_path(temp.id))
        _fsync_dir(blob_dir)
        sidecar = {
            "blob": temp.id,
            "size": info.size,
            "sha256": info.etag,
            "content_type": info.content_type,
            "metadata": info.metadata,
            "last_modified": info.last_modified.isoformat(),
        }
        path = os.path.join(self._tmp, temp.id + ".json")
        with open(path, "xb") as f:
            f.write(json.dumps(sidecar, separators=(",", ":")).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        return path

    def _commit(self, key: str, sidecar_tmp: str, blob: str) -> None:
        target = self._key_path(key)
        parent = os.path.dirname(target)
        _inside(parent, self._keys)
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise Conflict(f"cannot store {key!r}: a parent path is already an object") from None
        _inside(parent, self._keys)
        old = _read_sidecar(target, key)
        try:
            os.replace(sidecar_tmp, target)
        except IsADirectoryError:
            raise Conflict(f"cannot store {key!r}: other objects live under this key") from None
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise Conflict(f"cannot store {key!r}: other objects live under this key") from None
            raise
        _fsync_dir(parent)
        if old is not None and old.blob != blob:
            try:
                os.unlink(self._blob_path(old.blob))
            except FileNotFoundError:
                pass

    def _abandon(self, temp: _TempBlob) -> None:
        temp.discard()
        for path in (self._blob_path(temp.id), os.path.join(self._tmp, temp.id + ".json")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # -- read ------------------------------------------------------------------------

    def _sidecar(self, key: str) -> _Sidecar:
        path = self._key_path(key)
        _inside(path, self._keys)
        sidecar = _read_sidecar(path, key)
        if sidecar is None:
            raise NotFound(f"object {key!r} does not exist")
        return sidecar

    def _open(self, key: str) -> tuple[ObjectInfo, BinaryIO]:
        for _ in range(5):
            sidecar = self._sidecar(key)
            blob_path = _inside(self._blob_path(sidecar.blob), self._blobs)
            try:
                fd = os.open(blob_path, _OPEN_READ)
            except FileNotFoundError:
                continue  # replaced between reading the sidecar and opening the blob
            return sidecar.info, os.fdopen(fd, "rb", buffering=0)
        raise Unavailable(f"object {key!r} is changing too fast to read; retry")

    async def _get(self, key: str) -> ObjectStream:
        info, file = await trio.to_thread.run_sync(self._open, key)
        return _LocalStream(info, file)

    async def _head(self, key: str) -> ObjectInfo:
        sidecar = await trio.to_thread.run_sync(self._sidecar, key)
        return sidecar.info

    # -- delete ----------------------------------------------------------------------

    def _remove(self, key: str) -> None:
        path = self._key_path(key)
        _inside(path, self._keys)
        sidecar = _read_sidecar(path, key)
        if sidecar is None:
            return
        os.unlink(path)
        parent = os.path.dirname(path)
        _fsync_dir(parent)
        try:
            os.unlink(self._blob_path(sidecar.blob))
        except FileNotFoundError:
            pass
        # Prune now-empty directories so listings stay cheap; stop at the first
        # one that still holds something.
        while parent != self._keys:
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)

    async def _delete(self, key: str) -> None:
        async with self._commit_lock:
            await trio.to_thread.run_sync(self._remove, key)

    # -- list ------------------------------------------------------------------------

    def _page(self, prefix: str, limit: int, start_after: str | None) -> SummaryPage:
        """Walk keys/ in key order, skipping whole subtrees that cannot match.

        A directory ``d`` holds exactly the keys starting with ``d/``, so
        sorting entries by ``name + "/"`` for directories and ``name`` for
        files visits keys in plain string (= UTF-8 byte) order, like S3.
        """
        page: SummaryPage = []
        base = prefix[: prefix.rfind("/") + 1]  # deepest directory the prefix names

        def visit(dir_path: str, dir_key: str) -> bool:
            try:
                entries = list(os.scandir(dir_path))
            except (FileNotFoundError, NotADirectoryError):
                return False
            items: list[tuple[str, str, bool]] = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    items.append((dir_key + entry.name + "/", entry.path, True))
                elif entry.is_file(follow_symlinks=False):  # symlinks are never objects
                    items.append((dir_key + entry.name, entry.path, False))
            items.sort()
            for name, path, is_dir in items:
                if is_dir:
                    if not (name.startswith(prefix) or prefix.startswith(name)):
                        continue
                    if start_after is not None and name < start_after and not start_after.startswith(name):
                        continue  # every key below sorts before start_after
                    if visit(path, name):
                        return True
                elif name.startswith(prefix) and (start_after is None or name > start_after):
                    sidecar = _read_sidecar(path, name)
                    if sidecar is None:  # deleted while we walked
                        continue
                    page.append(sidecar.info.summary())
                    if len(page) >= limit:
                        return True
            return False

        start = os.path.join(self._keys, *base.split("/")[:-1])
        _inside(start, self._keys)
        visit(start, base)
        return page

    async def _list(self, prefix: str, limit: int, start_after: str | None) -> SummaryPage:
        return await trio.to_thread.run_sync(self._page, prefix, limit, start_after)

    # -- signed URLs -----------------------------------------------------------------

    async def _signed_url(self, key: str, expires_in_s: int) -> str:
        return self._signer.sign(key, expires_in_s)

    def verify_signed_url(self, key: str, expires: str | int, sig: str, now: float | None = None) -> None:
        """For the gateway route serving ``/api/v1/objects/{key}``: raise
        ``Forbidden`` if the link is forged, tampered with or expired."""
        self._signer.verify(key, expires, sig, now=now)

    # -- health ----------------------------------------------------------------------

    def _probe(self) -> None:
        path = os.path.join(self._tmp, f"probe-{uuid.uuid4().hex}")
        with open(path, "xb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        os.unlink(path)

    async def writable(self) -> bool:
        with trio.move_on_after(5.0):
            try:
                # abandon: a hung disk must not hang /readyz with it
                await trio.to_thread.run_sync(self._probe, abandon_on_cancel=True)
            except OSError:
                return False
            return True
        return False

    async def aclose(self) -> None:
        pass  # nothing held open between calls


@asynccontextmanager
async def open_local_store(root: Path, signing_key: bytes) -> AsyncIterator[LocalObjectStore]:
    store = LocalObjectStore(root, UrlSigner(signing_key))
    await trio.to_thread.run_sync(store._prepare_dirs)
    try:
        yield store
    finally:
        await store.aclose()
