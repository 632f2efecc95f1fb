"""Handing a connection the lane does not serve to Hypercorn, mid-stream.

The lane has already read the request head to route it; Hypercorn's
``TCPServer`` gets a stream that replays those bytes first.  This is the
same construction ``hypercorn.trio.run.worker_serve`` uses (``WorkerContext``,
``ConnectionState``, ``TCPServer`` per connection); the ASGI lifespan is run
by :mod:`._serve` as ``worker_serve`` does.
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState
from hypercorn.utils import wrap_app

from ensemble.config import Settings

__all__ = ["ReplayStream", "HypercornBridge", "hypercorn_config"]


class ReplayStream(trio.abc.HalfCloseableStream):
    """A socket stream whose first reads return bytes that were already read.

    It has no ``do_handshake``: that is how ``TCPServer`` tells a plain TCP
    stream from TLS (it then reads ``stream.socket`` for the addresses).
    """

    def __init__(self, inner: trio.SocketStream, prefix: bytes) -> None:
        self._inner = inner
        self._prefix = prefix

    @property
    def socket(self) -> trio.socket.SocketType:
        return self._inner.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            if max_bytes is None or max_bytes >= len(self._prefix):
                data, self._prefix = self._prefix, b""
            else:
                data, self._prefix = self._prefix[:max_bytes], self._prefix[max_bytes:]
            return data
        return await self._inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.graceful_timeout = settings.shutdown_timeout_s
    config.accesslog = None
    config.errorlog = "-"
    config.include_server_header = False
    return config


class HypercornBridge:
    """Hypercorn's per-worker state, for connections handed over one by one."""

    def __init__(self, app: Any, config: HypercornConfig) -> None:
        self.config = config
        self.app: AppWrapper = wrap_app(app, config.wsgi_max_body_size, None)
        self.lifespan_state: dict[str, Any] = {}
        self.lifespan = Lifespan(self.app, config, self.lifespan_state)
        self.context = WorkerContext(None)

    async def serve_connection(self, sock: trio.socket.SocketType, prefix: bytes) -> None:
        stream = ReplayStream(trio.SocketStream(sock), prefix)
        server = TCPServer(self.app, self.config, self.context, ConnectionState(self.lifespan_state.copy()), stream)  # type: ignore[arg-type]
        await server.run()

    async def terminate(self) -> None:
        """Graceful shutdown: idle keep-alive connections close, requests in flight finish."""
        await self.context.terminated.set()
