"""Scratch Postgres for tests and benchmarks: the machine's server when reachable, else an embedded one.

``ENSEMBLE_TEST_DATABASE_URL`` names an admin DSN explicitly.  Otherwise the
harness tries 127.0.0.1:5432 (user postgres, trust auth, database test) and
falls back to an embedded cluster started in a temporary directory.  Each test
session (or benchmark run) works in a database of its own, created here and dropped at the end,
so parallel runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from pathlib import Path

import asyncpg

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def _reachable(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        return False
    await conn.close()
    return True


def with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


class ScratchPostgres:
    """Owns the admin connection target and the databases created for tests."""

    def __init__(self) -> None:
        self._embedded = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        explicit = os.environ.get("ENSEMBLE_TEST_DATABASE_URL")
        if explicit:
            self.admin_dsn = explicit
        elif asyncio.run(_reachable(DEFAULT_ADMIN_DSN)):
            self.admin_dsn = DEFAULT_ADMIN_DSN
        else:
            from ensemble.persistence.embedded import EmbeddedPostgres

            self._tmp = tempfile.TemporaryDirectory(prefix="ensemble-test-pg-", dir="/tmp")
            os.chmod(self._tmp.name, 0o755)
            self._embedded = EmbeddedPostgres(Path(self._tmp.name))
            self.admin_dsn = self._embedded.start()
        self.created: list[str] = []

    def create_database(self, prefix: str = "ens_test") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"

        async def run() -> None:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(run())
        self.created.append(name)
        return with_database(self.admin_dsn, name)

    def create_migrated_database(self, prefix: str = "ens_test") -> str:
        from ensemble.persistence.migrate import _migrate, available_migrations

        dsn = self.create_database(prefix)

        async def run() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await _migrate(conn, available_migrations())
            finally:
                await conn.close()

        asyncio.run(run())
        return dsn

    def close(self) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                for name in self.created:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(run())
        if self._embedded is not None:
            self._embedded.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
