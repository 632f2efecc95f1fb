"""One asyncio loop in a background thread, callable from trio.

Used by the server (asyncpg, aioboto3) and by the hub agent (asyncua), so it
lives outside the server packages and depends only on trio and the shared
exception tree.

trio runs the server; asyncpg, aioboto3 and asyncua only speak asyncio.  Rather
than mixing loops in one thread (trio-asyncio), each process owns one asyncio
loop in a daemon thread and trio code crosses into it with::

    result = await bridge.run(some_async_fn, arg1, arg2)

Theory of operation
-------------------
``run`` schedules ``fn(*args)`` as an asyncio task with
``run_coroutine_threadsafe`` and parks the calling trio task on a
``trio.Event``; the asyncio future's done-callback wakes it through
``TrioToken.run_sync_soon`` (the only thread-safe way into trio).  A crossing
costs roughly 100-150 µs, so callers make one crossing do a whole operation (a
transaction, not a row).

Cancellation: if the trio caller is cancelled, the asyncio task is cancelled
too, and the caller waits (shielded) until the task has really finished.  That
wait matters: an asyncpg connection whose query was interrupted must be
returned to its pool in a clean state before anyone else may use it, and
returning before the task ends would let the trio side believe the resource is
free while asyncio still holds it.

Events that originate on the asyncio side (LISTEN/NOTIFY, OPC UA data changes)
flow back through :meth:`AsyncioBridge.open_channel`: a bounded trio memory
channel whose sending end is safe to call from the asyncio thread.  When the
trio side falls behind, the channel drops and counts rather than grows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import trio

from ensemble.errors import Unavailable

__all__ = ["AsyncioBridge", "BridgeChannel", "open_bridge"]

T = TypeVar("T")


class BridgeChannel(Generic[T]):
    """A bounded asyncio → trio channel.

    ``send_threadsafe`` may be called from the asyncio thread (or any thread);
    items arrive on :attr:`receive` in order.  When the buffer is full the
    item is dropped and :attr:`dropped` counts it; consumers that cannot lose
    items must use the count to trigger a resync.
    """

    def __init__(self, token: trio.lowlevel.TrioToken, max_buffer: int) -> None:
        self._token = token
        self._send, self.receive = trio.open_memory_channel[T](max_buffer)
        self.dropped = 0
        self.closed = False

    def _deliver(self, item: T) -> None:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.dropped += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1

    def send_threadsafe(self, item: T) -> None:
        if self.closed:
            self.dropped += 1
            return
        try:
            self._token.run_sync_soon(self._deliver, item)
        except trio.RunFinishedError:
            self.closed = True
            self.dropped += 1

    def close(self) -> None:
        self.closed = True
        self._send.close()


class _Call(Generic[T]):
    """One crossing: the asyncio task and the trio event that reports its end."""

    __slots__ = ("fn", "args", "token", "loop", "task", "done", "result", "error", "cancelled")

    def __init__(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        token: trio.lowlevel.TrioToken,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.args = args
        self.token = token
        self.loop = loop
        self.task: asyncio.Task[T] | None = None
        self.done = trio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    async def _invoke(self) -> T:
        return await self.fn(*self.args)

    def start(self) -> None:  # on the loop thread
        if self.cancelled:
            self._finish()
            return
        self.task = self.loop.create_task(self._invoke())
        self.task.add_done_callback(self._on_done)

    def cancel(self) -> None:  # on the loop thread
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def _on_done(self, task: "asyncio.Task[T]") -> None:  # on the loop thread
        if task.cancelled():
            self.cancelled = True
        elif (exc := task.exception()) is not None:
            self.error = exc
        else:
            self.result = task.result()
        self._finish()

    def _finish(self) -> None:
        try:
            self.token.run_sync_soon(self.done.set)
        except trio.RunFinishedError:  # trio is gone; nobody is waiting
            pass

    def outcome(self) -> T:  # on the trio thread, after ``done``
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle via the traceback
            raise error
        if self.cancelled:
            # Cancelled from the asyncio side (shutdown), not by our caller.
            raise Unavailable("operation cancelled: the asyncio bridge is shutting down")
        return self.result  # type: ignore[return-value]


class AsyncioBridge:
    """Owns the asyncio loop thread; see the module docstring."""

    def __init__(self, *, name: str = "ensemble-asyncio") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._pending: set[_Call[Any]] = set()
        self._closing = False
        self.crossings = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread; must be called from inside trio."""
        if self._loop is not None:
            raise RuntimeError("bridge already started")
        self._token = trio.lowlevel.current_trio_token()
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def _main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=_main, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()

    async def aclose(self, *, timeout: float = 10.0) -> None:
        """Cancel pending asyncio tasks, wait for them, stop the loop.

        Callers still waiting in :meth:`run` are woken with ``Unavailable``
        (their tasks were cancelled underneath them).
        """
        loop = self._loop
        if loop is None or self._closing:
            return
        self._closing = True

        async def _drain() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)

        done = concurrent.futures.Future[None]()

        def _shutdown() -> None:
            async def _run() -> None:
                try:
                    await _drain()
                    await loop.shutdown_asyncgens()
                finally:
                    done.set_result(None)
                    loop.stop()

            loop.create_task(_run())

        loop.call_soon_threadsafe(_shutdown)
        thread = self._thread
        assert thread is not None
        # The drain is bounded by ``timeout``; the join blocks a worker thread,
        # never the trio loop.
        await trio.to_thread.run_sync(thread.join, timeout + 5.0)
        self._loop = None
        # Calls scheduled but never started before the loop stopped.
        for call in list(self._pending):
            if not call.done.is_set():
                call.cancelled = True
                call.done.set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._closing:
            raise Unavailable("asyncio bridge is not running")
        return self._loop

    # -- crossings ---------------------------------------------------------

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the asyncio loop and return its result.

        Exceptions raised by ``fn`` propagate unchanged.  Cancelling the trio
        caller cancels the asyncio task and waits for it to finish.
        """
        loop = self.loop
        call = _Call(fn, args, self._token_or_fail(), loop)
        self._pending.add(call)
        self.crossings += 1
        # Both callbacks run on the loop thread in FIFO order, so a cancel
        # request always finds the task already created (or never started).
        loop.call_soon_threadsafe(call.start)
        try:
            await call.done.wait()
        except trio.Cancelled:
            loop.call_soon_threadsafe(call.cancel)
            with trio.CancelScope(shield=True):
                await call.done.wait()
            raise
        finally:
            self._pending.discard(call)
        return call.outcome()

    def _token_or_fail(self) -> trio.lowlevel.TrioToken:
        assert self._token is not None
        return self._token

    def open_channel(self, max_buffer: int = 1024) -> BridgeChannel[Any]:
        """A bounded channel whose sender is safe to call from the loop thread."""
        if self._token is None:
            raise RuntimeError("bridge not started")
        return BridgeChannel(self._token, max_buffer)

    def statistics(self) -> dict[str, int]:
        return {"pending": len(self._pending), "crossings": self.crossings}


@asynccontextmanager
async def open_bridge(*, name: str = "ensemble-asyncio") -> AsyncIterator[AsyncioBridge]:
    """Start a bridge for the duration of the block; always shut it down."""
    bridge = AsyncioBridge(name=name)
    bridge.start()
    try:
        yield bridge
    finally:
        with trio.CancelScope(shield=True):
            await bridge.aclose()
