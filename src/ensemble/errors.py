"""The one exception tree of Ensemble.

Each class has one meaning, and says who is at fault and how the edge answers:
``status`` is the HTTP status, ``close_code`` the WebSocket close code, ``code``
the machine-readable ``error`` field of the JSON error body.  Driver exceptions
(asyncpg, botocore, ...) are translated into these at the repository edge and
never travel further up.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EnsembleError",
    "InvalidInput",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "Conflict",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "RateLimited",
    "Overloaded",
    "Unavailable",
    "ConfigError",
]


class EnsembleError(Exception):
    """Root of every error Ensemble raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    close_code: int = 1011  # WebSocket "internal error"

    def __init__(self, message: str = "", *, details: Any = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(EnsembleError):
    """The caller sent something malformed or semantically wrong."""

    status = 422
    code = "invalid_input"
    close_code = 1007


class Unauthenticated(EnsembleError):
    """No credentials, or credentials that do not verify."""

    status = 401
    code = "unauthenticated"
    close_code = 4401


class Forbidden(EnsembleError):
    """Authenticated, but the role does not allow this."""

    status = 403
    code = "forbidden"
    close_code = 4403


class NotFound(EnsembleError):
    """No such thing, or not one the caller's tenant may see."""

    status = 404
    code = "not_found"
    close_code = 4404


class Conflict(EnsembleError):
    """The request is valid but not in the thing's current state."""

    status = 409
    code = "conflict"
    close_code = 4409


class PayloadTooLarge(EnsembleError):
    status = 413
    code = "payload_too_large"
    close_code = 1009


class UnsupportedMediaType(EnsembleError):
    status = 415
    code = "unsupported_media_type"
    close_code = 1003


class RateLimited(EnsembleError):
    """Too many requests; ``retry_after`` seconds until the next is allowed."""

    status = 429
    code = "rate_limited"
    close_code = 4429

    def __init__(self, message: str = "", *, retry_after: float = 1.0, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Overloaded(EnsembleError):
    """A bounded queue or mailbox is full: back off and retry."""

    status = 503
    code = "overloaded"
    close_code = 1013  # "try again later"


class Unavailable(EnsembleError):
    """A dependency (database, object store, upstream API) cannot be reached."""

    status = 503
    code = "unavailable"
    close_code = 1011


class ConfigError(EnsembleError):
    """Configuration is invalid; raised at start-up, never at request time."""

    code = "config_error"
