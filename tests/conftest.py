"""Shared fixtures: real Postgres, the asyncio bridge, a migrated database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from ensemble.persistence.bridge import AsyncioBridge, open_bridge
from ensemble.persistence.database import Database, open_database
from tests.pg import TestPostgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[TestPostgres]:
    pg = TestPostgres()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="session")
def database_url(postgres: TestPostgres) -> str:
    """A migrated database shared by the session; tests use fresh keys and ids."""
    from ensemble.persistence.migrate import _migrate, available_migrations

    dsn = postgres.create_database()

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await _migrate(conn, available_migrations())
        finally:
            await conn.close()

    asyncio.run(run())
    return dsn


@pytest.fixture
async def bridge() -> AsyncIterator[AsyncioBridge]:
    async with open_bridge() as b:
        yield b


@pytest.fixture
async def db(bridge: AsyncioBridge, database_url: str) -> AsyncIterator[Database]:
    async with open_database(bridge, database_url, min_size=1, max_size=8) as database:
        yield database
