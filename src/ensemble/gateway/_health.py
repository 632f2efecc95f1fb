"""Liveness, readiness and metrics: unauthenticated, never rate limited."""

from __future__ import annotations

import hmac
from typing import Any, Literal

from quart import Response, request

from ensemble.errors import EnsembleError, Unauthenticated
from ensemble.gateway._negotiation import make_response
from ensemble.gateway._permissions import PUBLIC
from ensemble.gateway._routing import Api, Call
from ensemble.gateway._validation import ResponseModel
from ensemble.persistence.migrate import pending_migrations

api = Api("health", tag="Operations", url_prefix="")
health = api.blueprint


class HealthOut(ResponseModel):
    status: Literal["ok"]


class ReadyOut(ResponseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Any]


@api.route("GET", "/healthz", permission=PUBLIC, rate="none", response=HealthOut, summary="Liveness")
async def healthz(call: Call) -> Any:
    return {"status": "ok"}


@api.route("GET", "/readyz", permission=PUBLIC, rate="none", response=ReadyOut, alt_responses=((503, ReadyOut),),
           summary="Readiness: database reachable and migrated, object store writable")
async def readyz(call: Call) -> Any:
    services = call.services
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
    body = ReadyOut(status="ready" if ready else "not_ready", checks=checks).model_dump(mode="json")
    return make_response(request, body, 200 if ready else 503)


@api.route("GET", "/metrics", permission=PUBLIC, rate="none", raw_media_type="text/plain; version=0.0.4",
           summary="Prometheus metrics (bearer ENSEMBLE_METRICS_TOKEN if configured)", errors=(401,))
async def metrics(call: Call) -> Any:
    token = call.services.settings.metrics_token
    if token is not None:
        sent = request.headers.get("Authorization", "").partition(" ")[2].strip()
        if not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
            raise Unauthenticated("metrics need 'Authorization: Bearer <ENSEMBLE_METRICS_TOKEN>'")
    payload, content_type = call.gw.metrics.render()
    return Response(payload, status=200, content_type=content_type)
