"""The agent's own asyncio loop thread, callable from trio (asyncua lives there).

A deliberately small copy of the server's ``persistence/bridge.py`` pattern:
the agent is an edge process that must not import server packages, and it
needs only three things from the pattern:

* ``await bridge.run(fn, *args)`` runs ``fn`` as an asyncio task on the loop
  thread and parks the trio caller until it ends; cancelling the caller
  cancels the task and waits (shielded) for it to finish.
* ``bridge.open_channel()`` gives a bounded trio channel whose sender is safe
  to call from the loop thread (OPC UA data-change callbacks).
* ``open_agent_bridge()`` starts and always stops the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

__all__ = ["AgentBridge", "ThreadsafeChannel", "open_agent_bridge"]

T = TypeVar("T")


class ThreadsafeChannel:
    """Bounded asyncio → trio channel; drops (and counts) when the trio side falls behind."""

    def __init__(self, token: trio.lowlevel.TrioToken, max_buffer: int) -> None:
        self._token = token
        self._send, self.receive = trio.open_memory_channel[Any](max_buffer)
        self.dropped = 0

    def _deliver(self, item: Any) -> None:
        try:
            self._send.send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1

    def send_threadsafe(self, item: Any) -> None:
        try:
            self._token.run_sync_soon(self._deliver, item)
        except trio.RunFinishedError:
            self.dropped += 1


class AgentBridge:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def start(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=main, name="ensemble-agent-asyncio", daemon=True)
        self._thread.start()
        ready.wait()

    async def aclose(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = None

        async def drain() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(drain()))
        await trio.to_thread.run_sync(thread.join, timeout + 2.0)

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        loop = self._loop
        if loop is None or self._token is None:
            raise RuntimeError("the agent's asyncio bridge is not running")
        token = self._token
        done = trio.Event()
        box: dict[str, Any] = {}

        def finish() -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        def on_done(task: "asyncio.Task[T]") -> None:
            if task.cancelled():
                box["cancelled"] = True
            elif task.exception() is not None:
                box["error"] = task.exception()
            else:
                box["result"] = task.result()
            finish()

        def start() -> None:
            if box.get("cancel"):
                box["cancelled"] = True
                finish()
                return

            async def invoke() -> T:
                return await fn(*args)

            task = loop.create_task(invoke())
            box["task"] = task
            task.add_done_callback(on_done)

        def cancel() -> None:
            box["cancel"] = True
            task = box.get("task")
            if task is not None:
                task.cancel()

        loop.call_soon_threadsafe(start)
        try:
            await done.wait()
        except trio.Cancelled:
            loop.call_soon_threadsafe(cancel)
            with trio.CancelScope(shield=True):
                await done.wait()
            raise
        if "error" in box:
            error = box.pop("error")
            raise error
        if box.get("cancelled"):
            raise ConnectionError("operation cancelled: the agent's asyncio loop is stopping")
        return box["result"]  # type: ignore[no-any-return]

    def open_channel(self, max_buffer: int = 1024) -> ThreadsafeChannel:
        if self._token is None:
            raise RuntimeError("bridge not started")
        return ThreadsafeChannel(self._token, max_buffer)


@asynccontextmanager
async def open_agent_bridge() -> AsyncIterator[AgentBridge]:
    bridge = AgentBridge()
    bridge.start()
    try:
        yield bridge
    finally:
        with trio.CancelScope(shield=True):
            await bridge.aclose()
