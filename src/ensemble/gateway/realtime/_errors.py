"""What a real-time handler can be told about its socket, and the close codes.

Two exceptions, one meaning each:

- :class:`BadFrame`: the peer sent one message we cannot use (not JSON, not
  msgpack, not an object, too big).  The socket stays open; the handler
  answers with an error frame and goes on reading.
- :class:`SocketClosed`: the conversation is over (the peer closed or
  vanished, or we closed it: slow consumer, idle timeout, shutdown).
"""

from __future__ import annotations

from typing import Any

from ensemble.actors import CLOSE_ACTOR_RESET, CLOSE_SLOW_CONSUMER

__all__ = [
    "BadFrame",
    "SocketClosed",
    "CLOSE_NORMAL",
    "CLOSE_GOING_AWAY",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CLOSE_INTERNAL",
    "CLOSE_ABNORMAL",
    "CLOSE_UNAUTHENTICATED",
    "CLOSE_FORBIDDEN",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_ACTOR_RESET",
]

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server shutting down, idle timeout
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007  # undecodable payload
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011  # a handler raised
# Never sent on the wire (RFC 6455 7.4.1): what SocketClosed carries when the
# TCP connection ended without a close frame.
CLOSE_ABNORMAL = 1006
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403

_ERROR_NAMES = {CLOSE_TOO_BIG: "payload_too_large", CLOSE_INVALID_DATA: "invalid_frame"}


class SocketClosed(Exception):
    """The socket is closed; ``code`` is the WebSocket close code (1006: no close frame)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"{code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class BadFrame(Exception):
    """One unusable incoming message; the socket stays open.

    ``code`` is the close code a stricter server would have used (1007
    undecodable or not an object, 1009 too big); :meth:`to_message` is the
    error frame to answer with.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def error(self) -> str:
        return _ERROR_NAMES.get(self.code, "invalid_frame")

    def to_message(self) -> dict[str, Any]:
        return {"type": "error", "error": self.error, "message": self.message}
