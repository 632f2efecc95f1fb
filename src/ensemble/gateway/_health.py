"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify

from ensemble.errors import EnsembleError
from ensemble.persistence.migrate import pending_migrations

health = Blueprint("health", __name__)


@health.get("/healthz")
async def healthz() -> Any:
    return jsonify({"status": "ok"})


@health.get("/readyz")
async def readyz() -> Any:
    services = current_app.extensions["ensemble"]
    checks: dict[str, Any] = {}
    try:
        await services.db.fetchval("SELECT 1")
        checks["database"] = "ok"
        pending = await pending_migrations(services.db)
        checks["migrations"] = "ok" if not pending else {"pending": pending}
    except EnsembleError as exc:
        checks["database"] = exc.message
    try:
        checks["objects"] = "ok" if await services.objects.writable() else "not writable"
    except EnsembleError as exc:
        checks["objects"] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ready" if ready else "not_ready", "checks": checks}), 200 if ready else 503
