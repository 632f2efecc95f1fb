"""The gateway's per-app state, built once in ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import current_app

from ensemble.gateway._metrics import GatewayMetrics
from ensemble.gateway._passwords import PasswordHasher
from ensemble.gateway._ratelimit import RateLimiter
from ensemble.gateway._tokens import TokenIssuer

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["Gateway", "gateway", "EXTENSION"]

EXTENSION = "ensemble.gateway"


@dataclass
class Gateway:
    services: "Services"
    tokens: TokenIssuer
    passwords: PasswordHasher
    limiter: RateLimiter
    metrics: GatewayMetrics


def gateway() -> Gateway:
    state: Gateway = current_app.extensions[EXTENSION]
    return state
