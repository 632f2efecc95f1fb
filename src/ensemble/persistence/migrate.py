"""Numbered plain-SQL migrations, applied once each under an advisory lock.

Files are ``NNNN_name.sql`` in ``persistence/migrations``.  Each runs in its own
transaction and is recorded in ``schema_migrations`` with a checksum; an
applied file whose text later changed is reported rather than silently
skipped.  A session-level advisory lock serialises concurrent migrators (two
servers starting at once): the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from ensemble.errors import ConfigError
from ensemble.persistence.database import Database

__all__ = ["Migration", "available_migrations", "migrate", "pending_migrations"]

# Any constant works; it only has to be the same for every Ensemble process.
_LOCK_ID = 0x656E73656D626C65 & 0x7FFFFFFFFFFFFFFF  # "ensemble"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    out = []
    for entry in resources.files("ensemble.persistence.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            out.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise ConfigError("two migrations share a version number")
    return out


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


async def _migrate(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done: list[int] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise ConfigError(
                        f"migration {m.version:04d}_{m.name} was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def migrate(db: Database) -> list[int]:
    """Apply every pending migration; returns the versions applied now."""
    return await db.run(_migrate, available_migrations())


async def pending_migrations(db: Database) -> list[int]:
    async def _pending(conn: asyncpg.Connection) -> list[int]:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        applied = set()
        if exists:
            applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        return [m.version for m in available_migrations() if m.version not in applied]

    return await db.run(_pending)
