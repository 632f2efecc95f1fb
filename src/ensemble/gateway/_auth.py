"""Who is calling: the bearer token, verified, then checked against its session.

The tenant of every request comes from here and nowhere else: not from
the body, not from a header.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Request

from ensemble.errors import Forbidden, Unauthenticated
from ensemble.gateway._permissions import allows
from ensemble.gateway._state import Gateway
from ensemble.gateway._tokens import AccessClaims, TokenIssuer, load_jwt_secret
from ensemble.persistence.repos import sessions

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["Principal", "bearer_token", "verify_request", "client_ip", "token_issuer", "authenticate_token"]


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


def token_issuer(services: "Services") -> TokenIssuer:
    """The process's one token issuer, shared by REST and the real-time sockets."""
    issuer: TokenIssuer | None = services.extras.get("token_issuer")
    if issuer is None:
        settings = services.settings
        issuer = TokenIssuer(load_jwt_secret(settings), access_ttl_s=settings.access_token_ttl_s)
        services.extras["token_issuer"] = issuer
    return issuer


async def _live_principal(services: "Services", claims: AccessClaims) -> Principal:
    # Every call checks its login session, so a logout, a removal or a role
    # change takes effect at once rather than when the token expires.
    role = await services.db.run(sessions.session_role, claims.session_id, claims.user_id, claims.tenant_id)
    if role is None:
        raise Unauthenticated("session ended: log in again")
    return Principal(user_id=claims.user_id, tenant_id=claims.tenant_id, session_id=claims.session_id, role=role)


async def verify_request(gw: Gateway, request: Request, *, rate_limit: bool = True) -> Principal:
    claims = gw.tokens.verify_access(bearer_token(request))
    if rate_limit:
        # Before the database: a flood of valid tokens costs no queries.
        settings = gw.services.settings
        gw.limiter.hit(("user", claims.user_id), per_period=settings.rate_limit_user_per_minute, period_s=60.0)
        gw.limiter.hit(("tenant", claims.tenant_id), per_period=settings.rate_limit_tenant_per_minute, period_s=60.0)
    return await _live_principal(gw.services, claims)


async def authenticate_token(services: "Services", token: str, permission: str, *, denied: str) -> Principal:
    """A socket's caller, as REST builds it, holding ``permission``.

    ``Unauthenticated`` for a bad token or an ended login; ``Forbidden`` with
    "role '<role>' <denied>" when the role lacks the permission.
    """
    principal = await _live_principal(services, token_issuer(services).verify_access(token))
    if not allows(principal.role, permission):
        raise Forbidden(f"role {principal.role!r} {denied}")
    return principal
