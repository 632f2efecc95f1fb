"""The HTTP/WebSocket edge: authenticates, validates, then asks an actor or a repository."""

from ensemble.gateway._app import create_app
from ensemble.gateway._metrics import register_collector
from ensemble.gateway._openapi import build_spec
from ensemble.gateway._permissions import PERMISSIONS, PUBLIC, Role
from ensemble.gateway._routing import RouteSpec, all_routes

__all__ = ["create_app", "register_collector", "build_spec", "PERMISSIONS", "PUBLIC", "Role", "RouteSpec", "all_routes"]
