"""Shared fixtures: real Postgres, the asyncio bridge, a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ensemble.bridge import AsyncioBridge, open_bridge
from ensemble.persistence.database import Database, open_database
from ensemble.testing import ScratchPostgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[ScratchPostgres]:
    pg = ScratchPostgres()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="session")
def database_url(postgres: ScratchPostgres) -> str:
    """A migrated database shared by the session; tests use fresh keys and ids."""
    return postgres.create_migrated_database()


@pytest.fixture
async def bridge() -> AsyncIterator[AsyncioBridge]:
    async with open_bridge() as b:
        yield b


@pytest.fixture
async def db(bridge: AsyncioBridge, database_url: str) -> AsyncIterator[Database]:
    async with open_database(bridge, database_url, min_size=1, max_size=8) as database:
        yield database
