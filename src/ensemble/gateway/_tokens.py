"""Access tokens (JWT, HS256, short-lived) and refresh tokens (opaque, rotated).

The access token names one tenant and the login session it belongs to; the
gateway still checks the session and the membership on every request (see
``repos.sessions.session_role``), so the role inside the token is only a hint
for clients.  Refresh tokens are ``<token id>.<256-bit secret>``; only the
secret's SHA-256 is stored.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from ensemble.config import Settings
from ensemble.keyfile import read_or_create_key
from ensemble.errors import ConfigError, Unauthenticated

__all__ = ["AccessClaims", "TokenIssuer", "RefreshToken", "load_jwt_secret", "JWT_KEY_FILE"]

JWT_KEY_FILE = "jwt.key"
_ISSUER = "ensemble"
_AUDIENCE = "ensemble-api"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    role: str
    expires_at: int


class TokenIssuer:
    def __init__(self, secret: bytes, *, access_ttl_s: int) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        self._secret = secret
        self.access_ttl_s = access_ttl_s

    def issue_access(self, *, user_id: uuid.UUID, tenant_id: uuid.UUID, session_id: uuid.UUID, role: str) -> str:
        now = int(time.time())
        claims = {
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": str(user_id),
            "tid": str(tenant_id),
            "sid": str(session_id),
            "role": role,
            "iat": now,
            "exp": now + self.access_ttl_s,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify_access(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],  # never "none", never an algorithm the token picks
                audience=_AUDIENCE,
                issuer=_ISSUER,
                options={"require": ["exp", "iat", "sub", "tid", "sid"]},
                leeway=5,
            )
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                tenant_id=uuid.UUID(claims["tid"]),
                session_id=uuid.UUID(claims["sid"]),
                role=str(claims.get("role", "")),
                expires_at=int(claims["exp"]),
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired") from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise Unauthenticated("invalid access token") from None


@dataclass(frozen=True)
class RefreshToken:
    token_id: uuid.UUID
    secret: bytes

    @classmethod
    def new(cls) -> "RefreshToken":
        return cls(uuid.uuid4(), secrets.token_bytes(32))

    @classmethod
    def parse(cls, text: str) -> "RefreshToken":
        try:
            head, _, tail = text.partition(".")
            secret = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
            if len(secret) != 32:
                raise ValueError
            return cls(uuid.UUID(head), secret)
        except (ValueError, TypeError):
            raise Unauthenticated("invalid refresh token") from None

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.secret).digest()

    def __str__(self) -> str:
        return f"{self.token_id}.{base64.urlsafe_b64encode(self.secret).rstrip(b'=').decode()}"


def _read_or_create(path: Path) -> bytes:
    return read_or_create_key(path, min_bytes=32, what="JWT key")


def load_jwt_secret(settings: Settings) -> bytes:
    """``ENSEMBLE_JWT_SECRET``, or a key generated once into ``{data_dir}/jwt.key`` (0600).

    Blocking file I/O, called once while the app is built, before it serves.
    """
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value().encode("utf-8")
        if len(secret) < 32:
            # Hashing a short secret would not add entropy to it: refuse it.
            raise ConfigError("invalid setting ENSEMBLE_JWT_SECRET: must be at least 32 bytes")
        return secret
    return _read_or_create(Path(settings.data_dir) / JWT_KEY_FILE)
