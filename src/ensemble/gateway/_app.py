"""The Quart (quart-trio) application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ensemble.errors import EnsembleError, RateLimited, Unauthenticated
from ensemble.gateway._asgi import DrainUnreadBody
from ensemble.gateway._metrics import GatewayMetrics
from ensemble.gateway._middleware import install
from ensemble.gateway._negotiation import make_response
from ensemble.gateway._passwords import PasswordHasher
from ensemble.gateway._ratelimit import RateLimiter
from ensemble.gateway._state import EXTENSION, Gateway
from ensemble.gateway._auth import token_issuer
from ensemble.log import get_logger

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["create_app"]

log = get_logger("ensemble.gateway")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}
# Room for the multipart envelope around the largest allowed upload; JSON
# and msgpack bodies have their own, much smaller limit (max_body_bytes).
_MULTIPART_OVERHEAD = 64 << 10


def create_app(services: "Services") -> QuartTrio:
    from ensemble.gateway.console import console
    from ensemble.gateway.routes import BLUEPRINTS

    settings = services.settings
    app = QuartTrio("ensemble", static_folder=None)
    app.config["ENSEMBLE_SERVICES"] = services
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + _MULTIPART_OVERHEAD
    app.config["JSON_SORT_KEYS"] = False
    # "//x" must not be quietly redirected to "/x": an object key or an id
    # is exactly what the client sent, or it is refused.
    app.url_map.merge_slashes = False
    app.extensions["ensemble"] = services
    limiter = RateLimiter(settings.rate_limit_max_buckets)
    app.extensions[EXTENSION] = Gateway(
        services=services,
        tokens=token_issuer(services),
        passwords=PasswordHasher(settings),
        limiter=limiter,
        metrics=GatewayMetrics(
            services,
            extra=lambda: [("ensemble_rate_limit_buckets", "Rate-limit buckets held in memory.", {}, len(limiter))],
        ),
    )
    install(app)
    app.asgi_app = DrainUnreadBody(app.asgi_app)  # type: ignore[method-assign, assignment, arg-type]
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_blueprint(console)

    @app.errorhandler(EnsembleError)
    async def _ensemble_error(exc: EnsembleError) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="ensemble"'
        if exc.status >= 500:
            log.warning("request_failed", error=exc.code, message=exc.message)
        return make_response(request, exc.to_body(), exc.status, headers)

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        body: dict[str, Any] = {"error": _HTTP_CODES.get(status, "http_error"), "message": exc.description or ""}
        headers: dict[str, str] = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return make_response(request, body, status, headers)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        # Never a stack trace to the client; the log has it, under the request id.
        log.exception("unhandled_error", error=type(exc).__name__)
        return make_response(request, {"error": "internal_error", "message": "internal server error"}, 500)

    return app
