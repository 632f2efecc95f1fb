"""Migrations: applied once, idempotent, safe when two processes race."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import pytest
import trio

from ensemble.errors import ConfigError
from ensemble.bridge import AsyncioBridge
from ensemble.persistence.database import open_database
from ensemble.persistence.migrate import available_migrations, migrate, pending_migrations

EXPECTED_TABLES = {
    "tenants", "users", "memberships",
    "actor_leases", "actor_events", "actor_snapshots", "actor_alarms",
    "schema_migrations",
}


async def _tables(db) -> set[str]:  # type: ignore[no-untyped-def]
    rows = await db.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def test_fresh_database_is_migrated_then_idempotent(bridge: AsyncioBridge, postgres) -> None:  # type: ignore[no-untyped-def]
    dsn = await trio.to_thread.run_sync(postgres.create_database)
    async with open_database(bridge, dsn, min_size=1, max_size=2) as db:
        assert await pending_migrations(db) == [m.version for m in available_migrations()]
        applied = await migrate(db)
        assert applied == [m.version for m in available_migrations()]
        assert EXPECTED_TABLES <= await _tables(db)
        assert await migrate(db) == []
        assert await pending_migrations(db) == []
        count = await db.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(available_migrations())


async def test_changed_migration_is_reported(bridge: AsyncioBridge, postgres) -> None:  # type: ignore[no-untyped-def]
    dsn = await trio.to_thread.run_sync(postgres.create_database)
    async with open_database(bridge, dsn, min_size=1, max_size=2) as db:
        await migrate(db)
        await db.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
        with pytest.raises(ConfigError, match="changed after it was applied"):
            await migrate(db)


def test_two_processes_migrating_at_once(postgres) -> None:  # type: ignore[no-untyped-def]
    dsn = postgres.create_database()
    script = (
        "import sys, trio\n"
        "from ensemble.bridge import open_bridge\n"
        "from ensemble.persistence.database import open_database\n"
        "from ensemble.persistence.migrate import migrate\n"
        "async def main():\n"
        "    async with open_bridge() as b, open_database(b, sys.argv[1], min_size=1, max_size=1) as db:\n"
        "        print(len(await migrate(db)))\n"
        "trio.run(main)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, dsn], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    counts = sorted(int(o[0].strip()) for o in outs)
    # Exactly one process applied everything; the other found nothing to do.
    assert counts == [0, len(available_migrations())]

    async def check() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval("SELECT count(*) FROM schema_migrations")
        finally:
            await conn.close()

    import asyncio

    assert asyncio.run(check()) == len(available_migrations())
