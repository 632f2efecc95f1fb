"""The composition root: opens every service in order and serves the gateway.

Start-up order (reverse for shutdown, all inside one trio nursery tree):
asyncio bridge → Postgres (embedded unless ENSEMBLE_DATABASE_URL) → migrations →
object store → knowledge service (index shards loaded and reconciled; the
assistant) → actor system → the gateway (real-time lane + Hypercorn with the
Quart app, one port).
"""

from __future__ import annotations

import gc
import json
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ensemble.actors import ActorSystem, Behavior, open_actor_system
from ensemble.config import Settings
from ensemble.errors import EnsembleError
from ensemble.knowledge.service import KnowledgeService, open_knowledge_service
from ensemble.log import get_logger
from ensemble.bridge import AsyncioBridge, open_bridge
from ensemble.persistence.database import Database, open_database
from ensemble.persistence.embedded import EmbeddedPostgres
from ensemble.persistence.migrate import migrate
from ensemble.persistence.objects import ObjectStore, open_object_store
from ensemble.persistence.repos import sessions as login_sessions

__all__ = ["Services", "open_services", "serve", "resolve_dsn"]

log = get_logger("ensemble.server")


@dataclass
class Services:
    """Everything a request handler may reach; built once per process."""

    settings: Settings
    bridge: AsyncioBridge
    db: Database
    objects: ObjectStore
    knowledge: KnowledgeService = field(init=False)
    actors: ActorSystem = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)
    # Callbacks that /metrics calls on every scrape; see
    # ``ensemble.gateway.register_collector`` for what they return.
    metric_callbacks: list[Any] = field(default_factory=list)


@asynccontextmanager
async def resolve_dsn(settings: Settings) -> AsyncIterator[str]:
    """The database URL: the configured one, or an embedded cluster's."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    dsn = await trio.to_thread.run_sync(embedded.start)
    log.info("embedded_postgres_started", data_dir=str(embedded.pgdata))
    try:
        yield dsn
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(embedded.stop)
            log.info("embedded_postgres_stopped")


@asynccontextmanager
async def open_services(
    settings: Settings, *, run_migrations: bool = True, ai_http_client: Any = None
) -> AsyncIterator[Services]:
    """Every service, opened in order.  ``ai_http_client`` replaces the Anthropic
    SDK's HTTP client (tests fake the API at that layer)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        bridge = await stack.enter_async_context(open_bridge())
        dsn = await stack.enter_async_context(resolve_dsn(settings))
        db = await stack.enter_async_context(
            open_database(
                bridge,
                dsn,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                statement_timeout_s=settings.db_statement_timeout_s,
            )
        )
        if run_migrations:
            applied = await migrate(db)
            if applied:
                log.info("migrations_applied", versions=applied)
        objects = await stack.enter_async_context(open_object_store(settings, bridge))
        services = Services(settings=settings, bridge=bridge, db=db, objects=objects)
        services.knowledge = await stack.enter_async_context(
            open_knowledge_service(settings, db, objects, http_client=ai_http_client)
        )
        services.metric_callbacks.append(lambda: _knowledge_samples(services.knowledge))
        services.actors = await stack.enter_async_context(
            open_actor_system(
                db,
                domain_behaviors(services),
                mailbox_size=settings.actor_mailbox_size,
                idle_timeout=settings.actor_idle_timeout_s,
                snapshot_every=settings.actor_snapshot_every,
                retained_events=settings.actor_retained_events,
                subscriber_buffer=settings.actor_subscriber_buffer,
            )
        )
        yield services


def domain_behaviors(services: Services) -> list[Behavior[Any]]:
    """Every actor kind this server hosts.  Behaviors are pure; what they need
    for side work (the assistant, signed URLs) is handed to them here."""
    from ensemble.actors.examples import EchoRoom

    return [EchoRoom(), *_hub_behaviors(services), *_session_behaviors(services)]


def _session_behaviors(services: Services) -> list[Behavior[Any]]:
    # The session socket registers its real-time routes on import.
    import ensemble.gateway.sockets.sessions  # noqa: F401
    from ensemble.actors.sessions import DiagnosticSession, SessionLimits

    # The knowledge service's assistant: retrieval + Claude, or quoted excerpts
    # without an API key (ENSEMBLE_AI_ASSISTANT picks; "echo" for tests).
    return [DiagnosticSession(services.knowledge.assistant, SessionLimits.from_env())]


def _knowledge_samples(knowledge: KnowledgeService) -> list[tuple[str, str, dict[str, str], float]]:
    stats = knowledge.statistics()
    samples = [
        ("ensemble_knowledge_chunks", "Indexed manual chunks.", {"scope": "global"}, stats["global_chunks"]),
        ("ensemble_knowledge_chunks", "Indexed manual chunks.", {"scope": "tenants"}, stats["tenant_chunks"]),
        ("ensemble_knowledge_documents", "Indexed manuals.", {}, stats["documents"]),
        ("ensemble_knowledge_dirty_scopes", "Index shards not yet written to object storage.", {}, stats["dirty_scopes"]),
    ]
    statistics = getattr(knowledge.assistant, "statistics", None)
    if statistics is not None:
        for outcome, count in statistics().items():
            if outcome != "online":
                samples.append(("ensemble_ai_answers", "AI questions handled since start, by outcome.", {"outcome": outcome}, count))
    return samples


def _hub_behaviors(services: Services) -> list[Behavior[Any]]:
    import uuid

    # The hub and dashboard sockets register their real-time routes on import.
    import ensemble.gateway.sockets.dashboards  # noqa: F401
    import ensemble.gateway.sockets.hubs  # noqa: F401
    from ensemble.actors.dashboards import TenantDashboard
    from ensemble.actors.hubs import HubConnection
    from ensemble.persistence.repos import hubs_live

    async def load_facts(hub_id: str) -> dict[str, Any]:
        return await services.db.run(hubs_live.hub_facts, uuid.UUID(hub_id))

    settings = services.settings
    hub = HubConnection(
        offline_after_s=settings.hub_offline_after_s,
        command_ttl_s=settings.hub_command_ttl_s,
        heartbeat_s=settings.hub_heartbeat_s,
        load_facts=load_facts,
    )
    return [hub, TenantDashboard()]


# Spent logins (refresh tokens past expiry, sessions left without tokens) are
# deleted once they are a week past use: long enough to investigate a reuse
# alarm, short enough that the tables stay the size of the active users.
LOGIN_PURGE_INTERVAL_S = 3600.0
LOGIN_PURGE_GRACE_S = 7 * 86400.0


async def purge_spent_logins(db: Database, *, interval_s: float = LOGIN_PURGE_INTERVAL_S,
                             grace_s: float = LOGIN_PURGE_GRACE_S) -> None:
    """Every ``interval_s``, forever: delete spent refresh tokens and login sessions."""
    while True:
        try:
            tokens, sessions = await db.run(lambda conn: login_sessions.purge_spent(conn, grace_s=grace_s))
        except EnsembleError as exc:  # the database is away: try again next round
            log.warning("login_purge_failed", error=exc.message)
        else:
            if tokens or sessions:
                log.info("logins_purged", refresh_tokens=tokens, sessions=sessions)
        await trio.sleep(interval_s)


def _tune_gc() -> None:
    # Long-lived connection objects would otherwise be rescanned by every
    # young-generation collection; freeze what start-up allocated and make
    # gen-0 collections rarer (see ARCHITECTURE, "The real-time lane").
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 50_000), gen1, gen2)


async def serve(settings: Settings, *, port_file: Path | None = None, demo: bool = False) -> None:
    """Run the server until SIGTERM/SIGINT, then shut down within the grace period."""
    from ensemble.gateway import create_app
    from ensemble.gateway.realtime import serve_gateway

    shutdown = trio.Event()
    gateway_stopped = trio.Event()
    async with open_services(settings) as services:
        app = create_app(services)

        async def run_gateway(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
            # One port: the real-time lane accepts every connection, serves
            # WebSocket upgrades to its paths and hands the rest to Hypercorn.
            try:
                await serve_gateway(
                    services, app, settings.host, settings.port,
                    shutdown_trigger=shutdown.wait, task_status=task_status,
                )
            finally:
                gateway_stopped.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, shutdown)
            nursery.start_soon(purge_spent_logins, services.db)
            binds = await nursery.start(run_gateway)
            _tune_gc()
            url = binds[0]
            log.info("serving", url=url, database="embedded" if settings.embedded_postgres else "external",
                     objects=settings.object_store_kind)
            if demo:
                # Seeds once, prints the credentials, then runs the demo's
                # printers and hub agent here until the nursery is cancelled.
                from ensemble.demo import run_demo

                await nursery.start(run_demo, services, url)
            if port_file is not None:
                port = int(url.rsplit(":", 1)[1])
                port_file.write_text(json.dumps({"url": url, "port": port}))
            await shutdown.wait()
            # The gateway stops on its own trigger, within the grace period
            # (sockets closed with 1001, requests in flight finished); wait for
            # it, not for a task count, then cancel whatever is left.
            with trio.move_on_after(settings.shutdown_timeout_s + 5):
                await gateway_stopped.wait()
            nursery.cancel_scope.cancel()
    log.info("stopped")


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
            shutdown.set()
            return
