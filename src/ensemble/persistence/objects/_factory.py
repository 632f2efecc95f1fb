"""Choose the object store the settings ask for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ensemble.config import Settings
from ensemble.errors import ConfigError

from ensemble.bridge import AsyncioBridge
from ._base import ObjectStore
from ._local import open_local_store
from ._s3 import open_s3_store
from ._signing import load_signing_key

__all__ = ["open_object_store"]


@asynccontextmanager
async def open_object_store(
    settings: Settings, bridge: AsyncioBridge | None, *, create_bucket: bool = True
) -> AsyncIterator[ObjectStore]:
    """The local store under ``{data_dir}/objects`` by default; S3 when
    ``ENSEMBLE_S3_ENDPOINT`` is set (then ``bridge`` is required)."""
    if settings.object_store_kind == "local":
        key = await load_signing_key(settings)
        async with open_local_store(Path(settings.data_dir) / "objects", key) as local:
            yield local
        return
    if bridge is None:
        raise ConfigError("the S3 object store needs the asyncio bridge")
    assert settings.s3_endpoint is not None
    async with open_s3_store(
        bridge,
        endpoint_url=settings.s3_endpoint,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
        secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        create_bucket=create_bucket,
    ) as s3:
        yield s3
