"""Per-request plumbing: request id, structured log context, CORS, metrics, access log."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from quart import Quart, Response, g, request

from ensemble.gateway._state import gateway
from ensemble.log import get_logger

__all__ = ["install"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
_CORS_HEADERS = "Authorization, Content-Type, Accept, X-Request-ID"
_CORS_EXPOSE = "X-Request-ID, Retry-After, Content-Disposition"


def _route_label() -> str:
    # The rule template, never the raw path: label cardinality stays bounded.
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def _allowed_origin(origins: list[str]) -> str | None:
    origin = request.headers.get("Origin")
    if not origin or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def install(app: Quart) -> None:
    @app.before_request
    async def _begin() -> Response | None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            origin = _allowed_origin(gateway().services.settings.cors_origins)
            if origin is not None:
                preflight = Response(b"", status=204)
                del preflight.headers["Content-Type"]
                preflight.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
                preflight.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
                preflight.headers["Access-Control-Max-Age"] = "86400"
                return preflight
        return None

    @app.after_request
    async def _finish(response: Response) -> Response:
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        origin = _allowed_origin(gateway().services.settings.cors_origins)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = _CORS_EXPOSE
            if origin != "*":
                response.vary.add("Origin")
        started = getattr(g, "started", None)
        elapsed = time.perf_counter() - started if started is not None else 0.0
        route = _route_label()
        gateway().metrics.observe(request.method, route, response.status_code, elapsed)
        # A fresh proxy per request: a module-level one is frozen at its first
        # use (cache_logger_on_first_use) and would ignore a later log level.
        get_logger("ensemble.gateway.access").info(
            "request",
            method=request.method,
            route=route,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 2),
        )
        return response
