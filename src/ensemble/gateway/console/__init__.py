"""The web console: static pages the gateway serves at ``/`` (no build step)."""

from ensemble.gateway.console._serve import console

__all__ = ["console"]
