"""An in-process Ensemble server for end-to-end tests.

::

    async with running_server(database_url, tmp_path, rate_limit_user_per_minute=5) as srv:
        async with srv.client() as http:
            r = await http.get("/healthz")

It runs what ``ensemble serve`` runs (``open_services`` + ``create_app`` behind
the real-time lane and Hypercorn's trio TCP server) on 127.0.0.1 with a free port, against the given
database and a data directory under ``tmp_path``.  Settings default to
test-friendly values (cheap Argon2, generous rate limits); keyword
arguments override any setting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from quart_trio import QuartTrio

from ensemble.config import Settings
from ensemble.gateway import create_app
from ensemble.gateway.realtime import serve_gateway
from ensemble.log import configure_logging
from ensemble.server import Services, open_services

__all__ = ["RunningServer", "running_server", "TEST_SETTINGS"]

# Cheap hashing and limits that only the rate-limit tests hit.
TEST_SETTINGS: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "argon2_parallelism": 1,
    "argon2_max_concurrency": 4,
    "rate_limit_auth_per_minute": 100_000,
    "rate_limit_user_per_minute": 100_000,
    "rate_limit_tenant_per_minute": 100_000,
    "rate_limit_uploads_per_hour": 100_000,
    "db_pool_min": 1,
    "db_pool_max": 8,
    "log_level": "warning",
    # The deterministic assistant, as before the knowledge service was wired;
    # knowledge tests pass ai_assistant="auto" (or "offline") to get the real one.
    "ai_assistant": "echo",
}


@dataclass
class RunningServer:
    url: str
    services: Services
    app: QuartTrio

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client for this server (works under trio)."""
        kwargs.setdefault("timeout", 30.0)
        return httpx.AsyncClient(base_url=self.url, **kwargs)


@asynccontextmanager
async def running_server(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    values: dict[str, Any] = {
        **TEST_SETTINGS,
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "host": "127.0.0.1",
        "port": 0,
        "s3_endpoint": None,
        "jwt_secret": None,
        "signing_key": None,
    }
    values.update(overrides)
    settings = Settings(**values)
    # As `ensemble serve` does; tests default to warnings only, so the access log stays quiet.
    configure_logging(settings.log_level, "console")
    async with open_services(settings) as services:
        app = create_app(services)
        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                # Through the real-time lane, as `ensemble serve` does: one port for REST and WebSockets.
                lambda task_status: serve_gateway(
                    services, app, "127.0.0.1", 0, shutdown_trigger=shutdown.wait, task_status=task_status, config=config
                )
            )
            try:
                yield RunningServer(url=binds[0], services=services, app=app)
            finally:
                shutdown.set()
