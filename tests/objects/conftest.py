"""Fixtures for the object store tests.

``store`` is parametrized over both backends, so every test that uses it is a
contract test: the local store in a temp dir, and the S3 store against a moto
server running in this process but spoken to over real HTTP on 127.0.0.1.
Each S3 test gets its own bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from ensemble.config import Settings
from ensemble.bridge import AsyncioBridge, open_bridge
from ensemble.persistence.objects import ObjectStore, open_object_store


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def make_settings(kind: str, data_dir: Path, endpoint: str | None = None, **extra: object) -> Settings:
    # Everything that selects a backend is given explicitly, so ENSEMBLE_*
    # variables in the developer's environment cannot change what is tested.
    values: dict[str, object] = {
        "data_dir": data_dir,
        "s3_endpoint": None,
        "signing_key": None,
    }
    if kind == "s3":
        values.update(
            s3_endpoint=endpoint,
            s3_bucket=f"ens-test-{uuid.uuid4().hex[:16]}",
            s3_region="us-east-1",
            s3_access_key="testing",
            s3_secret_key="testing",
        )
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(name="make_settings")
def make_settings_fixture() -> Callable[..., Settings]:
    """The builder above, for tests that need settings of their own."""
    return make_settings


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    endpoint = request.getfixturevalue("moto_endpoint") if request.param == "s3" else None
    return make_settings(request.param, tmp_path, endpoint)


@pytest.fixture
async def bridge() -> AsyncIterator[AsyncioBridge]:
    async with open_bridge(name="objects-test") as running:
        yield running


@pytest.fixture
async def store(settings: Settings, bridge: AsyncioBridge) -> AsyncIterator[ObjectStore]:
    async with open_object_store(settings, bridge) as opened:
        yield opened
