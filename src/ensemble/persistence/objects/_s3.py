"""The S3 object store (AWS S3, MinIO, Cloudflare R2) over aioboto3.

aioboto3 only speaks asyncio, so the client lives on the bridge's asyncio
loop for the store's whole lifetime and every operation is one
``bridge.run`` crossing that does the whole thing (a put plus the head that
reports what was stored; a page of a listing; one chunk of a download).
botocore/aiohttp exceptions are translated into ``ensemble.errors`` right at
this edge and never travel further.

Large puts (more than ``PART_BYTES``, or a streamed body that turns out to be)
use a multipart upload, so memory stays bounded by one part whatever the
object's size; the upload is aborted if anything fails or is cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import aioboto3
import aiohttp
import trio
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from ensemble.errors import (
    EnsembleError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)

from ensemble.bridge import AsyncioBridge
from ._base import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectStore, ObjectStream, ObjectSummary, SummaryPage, iter_body

__all__ = ["S3ObjectStore", "open_s3_store", "PART_BYTES"]

PART_BYTES = 8 << 20  # multipart part size, and the largest single-request put
PROBE_KEY = "system/readyz-probe"

_DRIVER_ERRORS = (ClientError, BotoCoreError, aiohttp.ClientError, OSError)  # OSError covers TimeoutError
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "NoSuchBucket", "503", "500"}


def _error_code(exc: ClientError) -> tuple[str, int]:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def translate_error(exc: BaseException, key: str | None) -> EnsembleError:
    """The ``ensemble.errors`` meaning of a botocore/aiohttp failure."""
    what = f"object {key!r}" if key else "the object store"
    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        if code in _NOT_FOUND and key:
            return NotFound(f"object {key!r} does not exist")
        if code in _DENIED:
            return Forbidden(f"the object store denied access to {what} ({code})")
        if code == "EntityTooLarge":
            return PayloadTooLarge(f"{what} is too large for the object store")
        if code in _UNAVAILABLE or status >= 500:
            return Unavailable(f"the object store failed on {what} ({code or status})")
        return EnsembleError(f"the object store rejected the request for {what} ({code or status})")
    return Unavailable(f"the object store is unreachable ({type(exc).__name__})")


def _info(key: str, resp: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=int(resp["ContentLength"]),
        etag=str(resp.get("ETag", "")).strip('"'),
        last_modified=resp["LastModified"],
        content_type=str(resp.get("ContentType") or DEFAULT_CONTENT_TYPE),
        metadata={str(k): str(v) for k, v in (resp.get("Metadata") or {}).items()},
    )


async def _parts(data: bytes | AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """The body in ``PART_BYTES`` pieces (the last one shorter)."""
    if isinstance(data, bytes):
        if len(data) <= PART_BYTES:  # the common case: one request, no copy
            yield data
            return
        view = memoryview(data)
        for start in range(0, len(data), PART_BYTES):
            yield bytes(view[start : start + PART_BYTES])
        return
    buffer = bytearray()
    async with aclosing(iter_body(data)) as chunks:
        async for chunk in chunks:
            buffer += chunk
            while len(buffer) >= PART_BYTES:
                yield bytes(buffer[:PART_BYTES])
                del buffer[:PART_BYTES]
    if buffer:
        yield bytes(buffer)


class _S3Stream(ObjectStream):
    def __init__(self, store: S3ObjectStore, info: ObjectInfo, body: Any) -> None:
        super().__init__(info)
        self._store = store
        self._body = body

    async def _read(self, max_bytes: int) -> bytes:
        chunk: bytes = await self._store._call(self.info.key, _read_chunk, self._body, max_bytes)
        return chunk

    async def _close(self) -> None:
        # Shielded: the connection must go back (or be dropped) even when the
        # reader was cancelled, or aiohttp leaks it.
        with trio.CancelScope(shield=True):
            try:
                await self._store._bridge.run(_close_body, self._body)
            except Unavailable:  # the bridge is already shut down; so is the connection
                pass


async def _read_chunk(body: Any, max_bytes: int) -> bytes:
    # aiohttp hands out whatever arrived; fill up to max_bytes so one crossing
    # moves a useful amount.
    buffer = bytearray()
    while len(buffer) < max_bytes:
        chunk = await body.read(max_bytes - len(buffer))
        if not chunk:
            break
        buffer += chunk
    return bytes(buffer)


async def _close_body(body: Any) -> None:
    body.close()


class S3ObjectStore(ObjectStore):
    def __init__(self, bridge: AsyncioBridge, client: Any, bucket: str) -> None:
        self._bridge = bridge
        self._client = client
        self.bucket = bucket

    async def _call(self, key: str | None, fn: Any, *args: Any) -> Any:
        try:
            return await self._bridge.run(fn, *args)
        except _DRIVER_ERRORS as exc:
            raise translate_error(exc, key) from exc

    # -- asyncio side ----------------------------------------------------------------

    async def _a_head(self, key: str) -> ObjectInfo:
        return _info(key, await self._client.head_object(Bucket=self.bucket, Key=key))

    async def _a_put(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> ObjectInfo:
        await self._client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata
        )
        return await self._a_head(key)

    async def _a_get(self, key: str) -> tuple[ObjectInfo, Any]:
        resp = await self._client.get_object(Bucket=self.bucket, Key=key)
        return _info(key, resp), resp["Body"]

    async def _a_list(self, prefix: str, limit: int, start_after: str | None) -> SummaryPage:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if start_after is not None:
            kwargs["StartAfter"] = start_after
        resp = await self._client.list_objects_v2(**kwargs)
        return [
            ObjectSummary(
                key=str(o["Key"]),
                size=int(o["Size"]),
                etag=str(o.get("ETag", "")).strip('"'),
                last_modified=o["LastModified"],
            )
            for o in resp.get("Contents", [])
        ]

    # -- put -------------------------------------------------------------------------

    async def _put(
        self, key: str, data: bytes | AsyncIterable[bytes], content_type: str, metadata: dict[str, str]
    ) -> ObjectInfo:
        async with aclosing(_parts(data)) as parts:
            first = await anext(parts, b"")
            second = await anext(parts, None) if len(first) == PART_BYTES else None
            if second is None:
                info: ObjectInfo = await self._call(key, self._a_put, key, first, content_type, metadata)
                return info
            return await self._multipart(key, content_type, metadata, [first, second], parts)

    async def _multipart(
        self,
        key: str,
        content_type: str,
        metadata: dict[str, str],
        head: list[bytes],
        rest: AsyncIterator[bytes],
    ) -> ObjectInfo:
        client, bucket = self._client, self.bucket
        created = await self._call(
            key,
            lambda: client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata
            ),
        )
        upload_id = created["UploadId"]
        done: list[dict[str, Any]] = []

        async def upload(body: bytes) -> None:
            number = len(done) + 1
            resp = await self._call(
                key,
                lambda: client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                ),
            )
            done.append({"PartNumber": number, "ETag": resp["ETag"]})

        try:
            for body in head:
                await upload(body)
            async for body in rest:
                await upload(body)

            async def complete() -> ObjectInfo:
                await client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
                )
                return await self._a_head(key)

            result: ObjectInfo = await self._call(key, complete)
            return result
        except BaseException:
            # Parts of an unfinished upload are stored (and billed) until aborted.
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                try:
                    await self._call(
                        key, lambda: client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                    )
                except EnsembleError:
                    pass
            raise

    # -- the rest ----------------------------------------------------------------------

    async def _get(self, key: str) -> ObjectStream:
        info, body = await self._call(key, self._a_get, key)
        return _S3Stream(self, info, body)

    async def _head(self, key: str) -> ObjectInfo:
        result: ObjectInfo = await self._call(key, self._a_head, key)
        return result

    async def _delete(self, key: str) -> None:
        client, bucket = self._client, self.bucket
        await self._call(key, lambda: client.delete_object(Bucket=bucket, Key=key))

    async def _list(self, prefix: str, limit: int, start_after: str | None) -> SummaryPage:
        page: SummaryPage = await self._call(None, self._a_list, prefix, limit, start_after)
        return page

    async def _signed_url(self, key: str, expires_in_s: int) -> str:
        client, bucket = self._client, self.bucket
        url: str = await self._call(
            key,
            lambda: client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in_s
            ),
        )
        return url

    async def writable(self) -> bool:
        # A real (tiny, overwritten) write: HeadBucket would pass with
        # read-only credentials or a full/readonly MinIO.
        client, bucket = self._client, self.bucket
        with trio.move_on_after(5.0):
            try:
                await self._call(PROBE_KEY, lambda: client.put_object(Bucket=bucket, Key=PROBE_KEY, Body=b"ok"))
            except EnsembleError:
                return False
            return True
        return False

    async def aclose(self) -> None:
        pass  # the client belongs to open_s3_store, which closes it


async def _open_client(
    client_kwargs: dict[str, Any], bucket: str, region: str, create_bucket: bool
) -> tuple[Any, Any]:
    """On the asyncio loop: create the client and make sure the bucket exists."""
    context = aioboto3.Session().client("s3", **client_kwargs)
    client = await context.__aenter__()
    try:
        await _ensure_bucket(client, bucket, region, create_bucket)
    except BaseException:
        await context.__aexit__(None, None, None)
        raise
    return context, client


async def _ensure_bucket(client: Any, bucket: str, region: str, create: bool) -> None:
    try:
        await client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if _error_code(exc)[0] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    if not create:
        raise Unavailable(f"bucket {bucket!r} does not exist (and creating it is turned off)")
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region not in ("", "us-east-1", "auto"):  # us-east-1 and R2 refuse an explicit constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        await client.create_bucket(**kwargs)
    except ClientError as exc:
        if _error_code(exc)[0] != "BucketAlreadyOwnedByYou":  # another process won the race
            raise


async def _close_client(context: Any) -> None:
    await context.__aexit__(None, None, None)


@asynccontextmanager
async def open_s3_store(
    bridge: AsyncioBridge,
    *,
    endpoint_url: str,
    bucket: str,
    region: str = "us-east-1",
    access_key: str | None = None,
    secret_key: str | None = None,
    create_bucket: bool = True,
) -> AsyncIterator[S3ObjectStore]:
    """Open one client for the store's lifetime; fails fast (``Unavailable``,
    ``Forbidden``) if the endpoint or bucket cannot be used."""
    config = AioConfig(
        signature_version="s3v4",
        # Path style works for MinIO, R2, moto and plain IPs; virtual hosts need DNS.
        s3={"addressing_style": "path"},
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
        # botocore >= 1.36 adds CRC checksums to every request by default, which
        # several S3-compatible servers reject; only send them when required.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client_kwargs: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "region_name": region,
        "aws_access_key_id": access_key,
        "aws_secret_access_key": secret_key,
        "config": config,
    }
    try:
        context, client = await bridge.run(_open_client, client_kwargs, bucket, region, create_bucket)
    except _DRIVER_ERRORS as exc:
        raise translate_error(exc, None) from exc
    store = S3ObjectStore(bridge, client, bucket)
    try:
        yield store
    finally:
        await store.aclose()
        with trio.CancelScope(shield=True):
            try:
                await bridge.run(_close_client, context)
            except (Unavailable, *_DRIVER_ERRORS):
                pass  # closing a client whose loop or server is gone has nothing left to do
