"""The real-time WebSocket lane: session, dashboard and hub sockets at wire speed.

See ``docs/realtime.md``.  Handlers register with :func:`realtime_route` and
get a :class:`RealtimeSocket`; :func:`serve_gateway` serves the lane and the
Quart app (through Hypercorn) on one port.
"""

from ensemble.gateway.realtime._errors import (
    CLOSE_ACTOR_RESET,
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHENTICATED,
    BadFrame,
    SocketClosed,
)
from ensemble.gateway.realtime._routes import RealtimeRoute, realtime_route, registered_routes, unregister_route
from ensemble.gateway.realtime._serve import SUBPROTOCOLS, serve_gateway
from ensemble.gateway.realtime._settings import RealtimeSettings
from ensemble.gateway.realtime._socket import RealtimeSocket

__all__ = [
    "BadFrame",
    "CLOSE_ACTOR_RESET",
    "CLOSE_FORBIDDEN",
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL",
    "CLOSE_INVALID_DATA",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_TOO_BIG",
    "CLOSE_UNAUTHENTICATED",
    "RealtimeRoute",
    "RealtimeSettings",
    "RealtimeSocket",
    "SUBPROTOCOLS",
    "SocketClosed",
    "realtime_route",
    "registered_routes",
    "serve_gateway",
    "unregister_route",
]
