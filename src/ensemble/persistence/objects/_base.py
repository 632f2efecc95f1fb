"""The object store interface, shared by the local and the S3 backend.

Public methods validate their input here, once, and then call the backend's
underscore method; so a backend only ever sees keys that passed
:func:`validate_key`, and both backends reject exactly the same input.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from ensemble.errors import Forbidden, InvalidInput, PayloadTooLarge

from ._keys import (
    tenant_prefix,
    validate_content_type,
    validate_key,
    validate_metadata,
    validate_prefix,
)

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "MAX_LIST_LIMIT",
    "MAX_SIGNED_URL_TTL_S",
    "ObjectSummary",
    "ObjectInfo",
    "ObjectStream",
    "ObjectStore",
    "ScopedObjectStore",
    "SummaryPage",
    "iter_body",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_LIST_LIMIT = 1000  # one S3 ListObjectsV2 page
MAX_SIGNED_URL_TTL_S = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer
READ_CHUNK_BYTES = 1 << 20

Body = bytes | bytearray | memoryview | AsyncIterable[bytes]
# An alias because inside ObjectStore the name ``list`` is the method.
SummaryPage = list["ObjectSummary"]


async def iter_body(data: bytes | AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """The chunks of a put body, checking that an iterable really yields bytes."""
    if isinstance(data, bytes):
        yield data
        return
    async for chunk in data:
        if isinstance(chunk, (bytearray, memoryview)):
            chunk = bytes(chunk)
        if not isinstance(chunk, bytes):
            raise InvalidInput(f"object data chunks must be bytes, not {type(chunk).__name__}")
        if chunk:
            yield chunk


@dataclass(frozen=True)
class ObjectSummary:
    """What a listing returns.

    ``etag`` is an opaque change token: the SHA-256 hex digest on the local
    backend, S3's ETag (MD5, or ``md5-N`` after a multipart upload) on S3.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class ObjectInfo(ObjectSummary):
    """What ``head``/``put``/``get`` return: a summary plus content type and metadata.

    Listings do not carry these because S3's ListObjectsV2 does not, and
    fetching them would cost one HEAD per listed object.
    """

    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> ObjectSummary:
        return ObjectSummary(self.key, self.size, self.etag, self.last_modified)


class ObjectStream(abc.ABC):
    """The body of one object, read in chunks.

    ``await store.get(key)`` has already checked that the object exists (so a
    route can answer 404 before it starts a response) and returns this
    stream; iterate it, then close it, or use it as an async context manager.
    It closes itself when fully read.  One consumer at a time.
    """

    def __init__(self, info: ObjectInfo, chunk_size: int = READ_CHUNK_BYTES) -> None:
        self.info = info
        self.chunk_size = chunk_size
        self._closed = False

    @abc.abstractmethod
    async def _read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the body; ``b""`` at the end."""

    @abc.abstractmethod
    async def _close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        chunk = await self._read(self.chunk_size)
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def read_all(self, *, max_bytes: int | None = None) -> bytes:
        parts = bytearray()
        async with self:
            async for chunk in self:
                parts += chunk
                if max_bytes is not None and len(parts) > max_bytes:
                    raise PayloadTooLarge(f"object {self.info.key!r} is larger than {max_bytes} bytes")
        return bytes(parts)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._close()

    async def __aenter__(self) -> ObjectStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ObjectStore(abc.ABC):
    """Key → bytes with a content type and string metadata.

    All methods are trio-facing.  Missing objects raise ``NotFound`` on
    ``get``/``head``; ``delete`` of a missing key is a no-op.  Malformed keys
    raise ``InvalidInput`` before any I/O.
    """

    # -- public API: validate, then delegate -----------------------------------------

    async def put(
        self,
        key: str,
        data: Body,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` (replacing any object there), atomically:
        readers see the old object or the new one, never a mix."""
        key = validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, bytes) and not hasattr(data, "__aiter__"):
            raise InvalidInput("object data must be bytes or an async iterable of bytes")
        return await self._put(key, data, content_type, meta)

    async def get(self, key: str) -> ObjectStream:
        return await self._get(validate_key(key))

    async def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The whole object in memory; ``max_bytes`` guards against surprises."""
        stream = await self.get(key)
        return await stream.read_all(max_bytes=max_bytes)

    async def head(self, key: str) -> ObjectInfo:
        return await self._head(validate_key(key))

    async def delete(self, key: str) -> None:
        await self._delete(validate_key(key))

    async def list(
        self, prefix: str = "", *, limit: int = MAX_LIST_LIMIT, start_after: str | None = None
    ) -> SummaryPage:
        """One page of keys starting with ``prefix``, in UTF-8 byte order,
        strictly after ``start_after``.  Continue with ``start_after=page[-1].key``;
        a page shorter than ``limit`` is the last one."""
        prefix = validate_prefix(prefix)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if start_after is not None:
            start_after = validate_prefix(start_after)
        return await self._list(prefix, limit, start_after or None)

    async def signed_url(self, key: str, expires_in_s: int) -> str:
        """A URL that lets its holder download ``key`` until it expires."""
        key = validate_key(key)
        if isinstance(expires_in_s, bool) or not isinstance(expires_in_s, int):
            raise InvalidInput("expires_in_s must be an integer number of seconds")
        if not 1 <= expires_in_s <= MAX_SIGNED_URL_TTL_S:
            raise InvalidInput(f"expires_in_s must be between 1 and {MAX_SIGNED_URL_TTL_S}")
        return await self._signed_url(key, expires_in_s)

    def scoped(self, tenant_id: str | uuid.UUID) -> ScopedObjectStore:
        """A view that only accepts keys under ``tenants/{tenant_id}/``."""
        return ScopedObjectStore(self, tenant_id)

    @abc.abstractmethod
    async def writable(self) -> bool:
        """Can we write right now?  For ``/readyz``: never raises, answers promptly."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> ObjectStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- backend hooks: input is already valid -------------------------------------

    @abc.abstractmethod
    async def _put(
        self, key: str, data: bytes | AsyncIterable[bytes], content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo: ...

    @abc.abstractmethod
    async def _get(self, key: str) -> ObjectStream: ...

    @abc.abstractmethod
    async def _head(self, key: str) -> ObjectInfo: ...

    @abc.abstractmethod
    async def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    async def _list(self, prefix: str, limit: int, start_after: str | None) -> SummaryPage: ...

    @abc.abstractmethod
    async def _signed_url(self, key: str, expires_in_s: int) -> str: ...


class ScopedObjectStore(ObjectStore):
    """One tenant's view of a store.

    Keys and prefixes outside ``tenants/{tenant_id}/`` raise ``Forbidden``.
    Why Forbidden rather than NotFound: the decision is made on the key string
    alone, before any storage is touched, so it reveals nothing about which
    objects exist (no existence oracle); it applies to writes too, where
    "not found" would make no sense; and a route that builds keys with
    ``tenant_key(auth.tenant_id, ...)`` can only get here by a bug or an
    attack, both of which should be loud.  The view does not own the store:
    closing it is a no-op.
    """

    def __init__(self, store: ObjectStore, tenant_id: str | uuid.UUID) -> None:
        self._store = store
        self.prefix = tenant_prefix(tenant_id)

    def _check(self, key: str) -> str:
        if not key.startswith(self.prefix):
            raise Forbidden(f"key {key!r} is outside this tenant's objects ({self.prefix})")
        return key

    def scoped(self, tenant_id: str | uuid.UUID) -> ScopedObjectStore:
        scoped = ScopedObjectStore(self._store, tenant_id)
        if scoped.prefix != self.prefix:  # a view never widens
            raise Forbidden("cannot re-scope a tenant view to another tenant")
        return scoped

    async def _put(
        self, key: str, data: bytes | AsyncIterable[bytes], content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo:
        return await self._store.put(self._check(key), data, content_type=content_type, metadata=metadata)

    async def _get(self, key: str) -> ObjectStream:
        return await self._store.get(self._check(key))

    async def _head(self, key: str) -> ObjectInfo:
        return await self._store.head(self._check(key))

    async def _delete(self, key: str) -> None:
        await self._store.delete(self._check(key))

    async def _list(self, prefix: str, limit: int, start_after: str | None) -> SummaryPage:
        return await self._store.list(self._check(prefix), limit=limit, start_after=start_after)

    async def _signed_url(self, key: str, expires_in_s: int) -> str:
        return await self._store.signed_url(self._check(key), expires_in_s)

    async def writable(self) -> bool:
        return await self._store.writable()

    async def aclose(self) -> None:
        pass
