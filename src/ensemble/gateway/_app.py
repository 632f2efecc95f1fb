"""The Quart (quart-trio) application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, jsonify
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ensemble.errors import EnsembleError, RateLimited
from ensemble.gateway._health import health
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
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def create_app(services: "Services") -> QuartTrio:
    app = QuartTrio("ensemble", static_folder=None)
    app.config["ENSEMBLE_SERVICES"] = services
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_upload_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["ensemble"] = services
    app.register_blueprint(health)

    @app.errorhandler(EnsembleError)
    async def _ensemble_error(exc: EnsembleError) -> tuple[Response, int, dict[str, str]]:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(round(exc.retry_after))))
        return jsonify(exc.to_body()), exc.status, headers

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        body: dict[str, Any] = {"error": _HTTP_CODES.get(status, "http_error"), "message": exc.description or ""}
        return jsonify(body), status

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> tuple[Response, int]:
        # Never a stack trace to the client; the log has it.
        log.exception("unhandled_error", error=type(exc).__name__)
        return jsonify({"error": "internal_error", "message": "internal server error"}), 500

    return app
