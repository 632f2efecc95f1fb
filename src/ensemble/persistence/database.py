"""Postgres through asyncpg, on the asyncio side of the bridge.

Every public method is one bridge crossing.  Multi-statement work goes through
:meth:`Database.run`, which hands a pooled connection to an asyncio-side
function so a whole transaction costs one crossing.  asyncpg exceptions are
translated here into the Ensemble exception tree and go no further.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from ensemble.errors import Conflict, EnsembleError, InvalidInput, NotFound, Unavailable
from ensemble.bridge import AsyncioBridge

__all__ = ["Database", "open_database", "translate_db_error", "Connection"]

T = TypeVar("T")
Connection = asyncpg.Connection


def translate_db_error(exc: BaseException) -> EnsembleError:
    """Map a driver exception to the one Ensemble error that means the same."""
    if isinstance(exc, EnsembleError):
        return exc
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict("already exists", details={"constraint": exc.constraint_name})
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound("a referenced object does not exist", details={"constraint": exc.constraint_name})
    if isinstance(exc, (asyncpg.CheckViolationError, asyncpg.NotNullViolationError)):
        return InvalidInput("value not allowed", details={"constraint": exc.constraint_name})
    if isinstance(exc, (asyncpg.DataError, asyncpg.StringDataRightTruncationError)):
        return InvalidInput(f"invalid value: {exc.__class__.__name__}")
    if isinstance(exc, asyncpg.SerializationError) or isinstance(exc, asyncpg.DeadlockDetectedError):
        return Conflict("concurrent update, retry")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return Unavailable("database statement timed out")
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)):
        return Unavailable(f"database unavailable: {exc.__class__.__name__}")
    return Unavailable(f"database error: {exc.__class__.__name__}")


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects; one codec for the whole process.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Database:
    """A pool of asyncpg connections living on the bridge's asyncio loop."""

    def __init__(self, bridge: AsyncioBridge, pool: asyncpg.Pool, dsn: str) -> None:
        self.bridge = bridge
        self.pool = pool
        self.dsn = dsn

    @classmethod
    async def connect(
        cls,
        bridge: AsyncioBridge,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_s: float = 30.0,
    ) -> "Database":
        async def _create() -> asyncpg.Pool:
            return await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                command_timeout=statement_timeout_s,
                server_settings={"application_name": "ensemble"},
            )

        try:
            pool = await bridge.run(_create)
        except Exception as exc:
            raise translate_db_error(exc) from None
        return cls(bridge, pool, dsn)

    async def close(self) -> None:
        try:
            await self.bridge.run(self.pool.close)
        except EnsembleError:
            pass

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(conn, *args)`` with a pooled connection, in one crossing."""

        async def _with_conn() -> T:
            async with self.pool.acquire() as conn:
                return await fn(conn, *args)

        try:
            return await self.bridge.run(_with_conn)
        except EnsembleError:
            raise
        except Exception as exc:
            raise translate_db_error(exc) from exc

    async def transaction(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Like :meth:`run`, inside one transaction."""

        async def _in_tx(conn: asyncpg.Connection, *a: Any) -> T:
            async with conn.transaction():
                return await fn(conn, *a)

        return await self.run(_in_tx, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.run(lambda c: c.execute(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self.run(lambda c: c.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self.run(lambda c: c.fetchrow(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.run(lambda c: c.fetchval(sql, *args))

    def statistics(self) -> dict[str, int]:
        return {
            "pool_size": self.pool.get_size(),
            "pool_idle": self.pool.get_idle_size(),
            "pool_max": self.pool.get_max_size(),
        }


@asynccontextmanager
async def open_database(bridge: AsyncioBridge, dsn: str, **kw: Any) -> AsyncIterator[Database]:
    db = await Database.connect(bridge, dsn, **kw)
    try:
        yield db
    finally:
        import trio

        with trio.CancelScope(shield=True):
            await db.close()
