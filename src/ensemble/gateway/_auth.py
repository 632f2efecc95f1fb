"""Who is calling: the bearer token, verified, then checked against its session.

The tenant of every request comes from here and nowhere else: not from
the body, not from a header.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from quart import Request

from ensemble.errors import Unauthenticated
from ensemble.gateway._state import Gateway
from ensemble.persistence.repos import sessions

__all__ = ["Principal", "bearer_token", "verify_request", "client_ip"]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    role: str


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send 'Authorization: Bearer <access token>'")
    return token.strip()


def client_ip(request: Request) -> str:
    # No X-Forwarded-For: trusting it without a known proxy in front would
    # let any client pick its own rate-limit key.
    return request.remote_addr or "unknown"


async def verify_request(gw: Gateway, request: Request, *, rate_limit: bool = True) -> Principal:
    claims = gw.tokens.verify_access(bearer_token(request))
    if rate_limit:
        # Before the database: a flood of valid tokens costs no queries.
        settings = gw.services.settings
        gw.limiter.hit(("user", claims.user_id), per_period=settings.rate_limit_user_per_minute, period_s=60.0)
        gw.limiter.hit(("tenant", claims.tenant_id), per_period=settings.rate_limit_tenant_per_minute, period_s=60.0)
    role = await gw.services.db.run(sessions.session_role, claims.session_id, claims.user_id, claims.tenant_id)
    if role is None:
        raise Unauthenticated("session ended: log in again")
    return Principal(user_id=claims.user_id, tenant_id=claims.tenant_id, session_id=claims.session_id, role=role)
