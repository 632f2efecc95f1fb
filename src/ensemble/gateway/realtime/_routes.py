"""The registry of real-time paths (module-level, like Quart blueprints at import).

    @realtime_route("/api/v1/sessions/{session_id}/ws")
    async def session_socket(socket: RealtimeSocket, services: Services, session_id: str) -> None: ...

A ``{name}`` matches one path segment; the handler gets it percent-decoded
as a keyword argument.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote

__all__ = ["RealtimeRoute", "realtime_route", "match_route", "registered_routes", "unregister_route"]

Handler = Callable[..., Awaitable[None]]
H = TypeVar("H", bound=Handler)

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class RealtimeRoute:
    template: str
    handler: Handler
    kind: str  # label for metrics and logs ("sessions", "dashboards", "hubs", ...)
    _pattern: re.Pattern[str]

    def match(self, raw_path: str) -> dict[str, str] | None:
        found = self._pattern.fullmatch(raw_path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


_routes: dict[str, RealtimeRoute] = {}


def _compile(template: str) -> re.Pattern[str]:
    if not template.startswith("/"):
        raise ValueError(f"real-time path must start with '/': {template!r}")
    pattern, last = "", 0
    for found in _PARAM.finditer(template):
        pattern += re.escape(template[last : found.start()]) + f"(?P<{found[1]}>[^/]+)"
        last = found.end()
    return re.compile(pattern + re.escape(template[last:]))


def _default_kind(template: str) -> str:
    # "/api/v1/sessions/{id}/ws" -> "sessions": the last literal segment
    # before the first parameter names what the socket is about.
    literal = template.split("{", 1)[0].strip("/").split("/")
    return literal[-1] if literal and literal[-1] else "ws"


def realtime_route(template: str, *, kind: str | None = None) -> Callable[[H], H]:
    """Register ``handler(socket, services, **params)`` for WebSocket upgrades on ``template``."""
    pattern = _compile(template)

    def register(handler: H) -> H:
        existing = _routes.get(template)
        if existing is not None and existing.handler.__qualname__ != handler.__qualname__:
            raise ValueError(f"{template} is already served by {existing.handler.__qualname__}")
        _routes[template] = RealtimeRoute(template, handler, kind or _default_kind(template), pattern)
        return handler

    return register


def match_route(raw_path: str) -> tuple[RealtimeRoute, dict[str, str]] | None:
    for route in _routes.values():
        params = route.match(raw_path)
        if params is not None:
            return route, params
    return None


def registered_routes() -> list[RealtimeRoute]:
    return list(_routes.values())


def unregister_route(template: str) -> None:
    """For tests: forget a route."""
    _routes.pop(template, None)

