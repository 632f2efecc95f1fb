"""The HTTP/WebSocket edge: authenticates, validates, then asks an actor or a repository."""

from ensemble.gateway._app import create_app

__all__ = ["create_app"]
