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

__all__ = ["Database", "ReservedConnection", "open_database", "translate_db_error", "Connection"]

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
        self._reserved: set[ReservedConnection] = set()

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
        for reserved in list(self._reserved):
            await reserved.aclose()
        try:
            await self.bridge.run(self.pool.close)
        except EnsembleError:
            pass

    def reserve(self) -> "ReservedConnection":
        """A pooled connection kept by one user until :meth:`ReservedConnection.aclose`."""
        reserved = ReservedConnection(self)
        self._reserved.add(reserved)
        return reserved

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


def _usable(conn: asyncpg.Connection) -> bool:
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # a pool proxy whose connection the pool took back when it closed
        return False


class ReservedConnection:
    """One pooled connection held by one user, for a hot path (the group committer).

    :meth:`Database.run` acquires a connection per call and the pool resets
    it on release (``RESET ALL``, ``UNLISTEN *``, ...): one more round trip
    per call, paid before the caller hears back.  A reserved connection
    skips both.  Its user must run one call at a time, must leave no
    session state behind (no open transaction: use ``conn.transaction()``),
    and gets a fresh connection after any error that is not a plain
    statement error reported by the server (the connection may be broken
    or in an unknown state: it is terminated and given back).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: asyncpg.Connection | None = None
        self.replaced = 0

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(conn, *args)`` on the reserved connection, in one crossing."""
        try:
            return await self._db.bridge.run(self._on_loop, fn, args)
        except EnsembleError:
            raise
        except Exception as exc:
            raise translate_db_error(exc) from exc

    async def _on_loop(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
        conn = self._conn
        if conn is None or not _usable(conn):
            if conn is not None:
                self.replaced += 1
                await self._abandon(conn)
            conn = self._conn = await self._db.pool.acquire()
        try:
            return await fn(conn, *args)
        except asyncpg.PostgresError:
            # The server refused a statement (its implicit transaction is
            # rolled back); the connection itself is fine.  If the server
            # ended the session (e.g. an administrator command), the next
            # call finds it closed and replaces it.
            if _usable(conn) and conn.is_in_transaction():  # a caller broke the contract
                await self._abandon(conn)
            raise
        except BaseException:
            # Connection trouble, a timeout or cancellation: the query may
            # still be running.  Never reuse that connection.
            await self._abandon(conn)
            raise

    async def _abandon(self, conn: asyncpg.Connection) -> None:
        """Drop the connection and give its pool slot back (no reset round trip)."""
        self._conn = None
        try:
            if _usable(conn):
                conn.terminate()
            # Needed also for a connection that closed under us: its slot
            # stays taken until released.  A no-op once the pool has it.
            await self._db.pool.release(conn)
        except Exception:  # already back in the pool, or the pool is closing
            pass

    async def aclose(self) -> None:
        """Give the connection back to the pool (needed before the pool can close)."""
        self._db._reserved.discard(self)
        conn, self._conn = self._conn, None
        if conn is None:
            return

        async def _release() -> None:
            await self._db.pool.release(conn)

        try:
            await self._db.bridge.run(_release)
        except Exception:  # the pool or the bridge is already gone
            pass


@asynccontextmanager
async def open_database(bridge: AsyncioBridge, dsn: str, **kw: Any) -> AsyncIterator[Database]:
    db = await Database.connect(bridge, dsn, **kw)
    try:
        yield db
    finally:
        import trio

        with trio.CancelScope(shield=True):
            await db.close()
