"""What only the S3 backend has: presigned URLs over HTTP, buckets, error mapping."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import httpx
import pytest
import trio
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from ensemble.config import Settings
from ensemble.errors import EnsembleError, Forbidden, NotFound, PayloadTooLarge, Unavailable
from ensemble.bridge import AsyncioBridge
from ensemble.persistence.objects import S3ObjectStore, open_object_store, tenant_key
from ensemble.persistence.objects._s3 import translate_error

MakeSettings = Callable[..., Settings]
MiB = 1 << 20


@pytest.fixture
def s3_settings(tmp_path: Path, moto_endpoint: str, make_settings: MakeSettings) -> Settings:
    return make_settings("s3", tmp_path, moto_endpoint)


@pytest.fixture
async def s3(s3_settings: Settings, bridge: AsyncioBridge) -> AsyncIterator[S3ObjectStore]:
    async with open_object_store(s3_settings, bridge) as store:
        assert isinstance(store, S3ObjectStore)
        yield store


def raw_client(endpoint: str) -> Any:
    """A plain boto3 client, to look at moto from outside the store."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


async def test_presigned_url_downloads_over_http(s3: S3ObjectStore) -> None:
    key = tenant_key("t1", "manual.pdf")
    await s3.put(key, b"%PDF-1.7 ...", content_type="application/pdf")
    url = await s3.signed_url(key, 120)
    query = httpx.URL(url).params
    assert query["X-Amz-Expires"] == "120"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Signature"]
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 ..."
    assert response.headers["content-type"] == "application/pdf"
    # Expiry itself is enforced by the S3 server (AWS, MinIO, R2); moto does not
    # check X-Amz-Expires, so "refused after expiry" is only testable against those.


async def test_one_bridge_crossing_per_operation(s3: S3ObjectStore, bridge: AsyncioBridge) -> None:
    key = tenant_key("t1", "x.bin")

    async def crossings(op: Any) -> int:
        before = bridge.statistics()["crossings"]
        await op
        return bridge.statistics()["crossings"] - before

    assert await crossings(s3.put(key, b"x" * 1000)) == 1  # put + head in one crossing
    assert await crossings(s3.head(key)) == 1
    assert await crossings(s3.list("tenants/")) == 1
    assert await crossings(s3.delete(key)) == 1
    await s3.put(key, os.urandom(3 * MiB))
    # get, 3 full chunks, the empty read that ends it, and the close
    assert await crossings(s3.get_bytes(key)) == 1 + 3 + 1 + 1


async def test_large_puts_use_multipart_and_failures_or_cancels_abort_it(s3: S3ObjectStore, moto_endpoint: str) -> None:
    key = tenant_key("t1", "big.bin")
    info = await s3.put(key, os.urandom(17 * MiB))
    assert info.etag.endswith("-3")  # S3's multipart ETag: md5-of-md5s "-" part count
    assert (await s3.head(key)).size == 17 * MiB

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(20 * MiB)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await s3.put(tenant_key("t1", "partial.bin"), broken())

    started = trio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield os.urandom(17 * MiB)
        started.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(s3.put, tenant_key("t1", "cancelled.bin"), stalled())
        await started.wait()
        nursery.cancel_scope.cancel()

    client = raw_client(moto_endpoint)
    uploads = await trio.to_thread.run_sync(lambda: client.list_multipart_uploads(Bucket=s3.bucket))
    assert uploads.get("Uploads", []) == []  # no orphaned parts left to pay for


async def test_bucket_is_created_unless_told_not_to(
    tmp_path: Path, moto_endpoint: str, bridge: AsyncioBridge, make_settings: MakeSettings
) -> None:
    settings = make_settings("s3", tmp_path, moto_endpoint)
    with pytest.raises(Unavailable, match="does not exist"):
        async with open_object_store(settings, bridge, create_bucket=False):
            pass
    async with open_object_store(settings, bridge) as store:
        assert await store.writable()
    async with open_object_store(settings, bridge, create_bucket=False) as again:  # exists now
        assert await again.list("tenants/") == []
    client = raw_client(moto_endpoint)
    await trio.to_thread.run_sync(lambda: client.head_bucket(Bucket=settings.s3_bucket))


async def test_unreachable_endpoint_is_unavailable(
    tmp_path: Path, bridge: AsyncioBridge, make_settings: MakeSettings
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = make_settings("s3", tmp_path, f"http://127.0.0.1:{port}")
    with trio.fail_after(60):
        with pytest.raises(Unavailable) as caught:
            async with open_object_store(settings, bridge):
                pass
    assert caught.type is Unavailable


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("NoSuchKey", 404), NotFound),
        (client_error("404", 404), NotFound),
        (client_error("AccessDenied", 403), Forbidden),
        (client_error("InvalidAccessKeyId", 403), Forbidden),
        (client_error("SignatureDoesNotMatch", 403), Forbidden),
        (client_error("EntityTooLarge", 400), PayloadTooLarge),
        (client_error("SlowDown", 503), Unavailable),
        (client_error("NoSuchBucket", 404), Unavailable),
        (client_error("WeirdNewError", 502), Unavailable),
        (client_error("InvalidArgument", 400), EnsembleError),
        (EndpointConnectionError(endpoint_url="http://x"), Unavailable),
        (ReadTimeoutError(endpoint_url="http://x"), Unavailable),
        (aiohttp.ServerDisconnectedError(), Unavailable),
        (TimeoutError(), Unavailable),
    ],
)
def test_driver_errors_map_to_ensemble_errors(exc: BaseException, expected: type[EnsembleError]) -> None:
    translated = translate_error(exc, "tenants/t1/x")
    assert type(translated) is expected


def test_not_found_without_a_key_is_about_the_store() -> None:
    # A 404 from a bucket-level call is a missing bucket, not a missing object.
    assert type(translate_error(client_error("404", 404), None)) is not NotFound
