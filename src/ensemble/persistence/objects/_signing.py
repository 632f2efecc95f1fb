"""Signed download URLs for the local backend, and the key that signs them.

A local signed URL is ``/api/v1/objects/{key}?expires={unix}&sig={mac}``
where ``mac = HMAC-SHA256(signing_key, "ensemble.object.get\\n{key}\\n{expires}")``,
base64url without padding.  The gateway route that serves these URLs calls
:meth:`UrlSigner.verify` (through ``LocalObjectStore.verify_signed_url``)
with the *decoded* key from the path.  The purpose prefix keeps a MAC made
for this use from ever being valid for another use of the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import trio

from ensemble.config import Settings
from ensemble.keyfile import read_or_create_key
from ensemble.errors import ConfigError, Forbidden

from ._keys import validate_key

__all__ = ["URL_PREFIX", "UrlSigner", "load_signing_key"]

URL_PREFIX = "/api/v1/objects/"
_PURPOSE = b"ensemble.object.get"
SIGNING_KEY_FILE = "signing.key"


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("signing key must be at least 16 bytes")
        self._key = key

    def _mac(self, key: str, expires: int) -> str:
        message = b"\n".join([_PURPOSE, key.encode("utf-8"), str(expires).encode("ascii")])
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, key: str, expires_in_s: int, *, now: float | None = None) -> str:
        """A relative URL (the gateway knows its public origin; we do not)."""
        key = validate_key(key)
        expires = int(now if now is not None else time.time()) + expires_in_s
        query = urlencode({"expires": expires, "sig": self._mac(key, expires)})
        return f"{URL_PREFIX}{quote(key, safe='/')}?{query}"

    def verify(self, key: str, expires: str | int, sig: str, *, now: float | None = None) -> None:
        """Raise ``Forbidden`` unless ``sig`` is ours for ``key`` and ``expires`` is in the future."""
        key = validate_key(key)
        try:
            expires_at = int(expires)
        except (TypeError, ValueError):
            raise Forbidden("signed URL has a malformed expiry") from None
        # Compare first, then check expiry: both paths take the same time, and a
        # forged link never learns whether its expiry alone was the problem.
        good = hmac.compare_digest(self._mac(key, expires_at).encode(), str(sig).encode())
        if not good:
            raise Forbidden("signed URL signature does not match")
        if (now if now is not None else time.time()) >= expires_at:
            raise Forbidden("signed URL has expired")


def _read_or_create_key_file(path: Path) -> bytes:
    return read_or_create_key(path, min_bytes=16, what="signing key")


async def load_signing_key(settings: Settings) -> bytes:
    """``settings.signing_key``, or the key generated once into ``{data_dir}/signing.key`` (0600)."""
    if settings.signing_key is not None:
        key = settings.signing_key.get_secret_value().encode("utf-8")
        if len(key) < 16:
            raise ConfigError("invalid setting ENSEMBLE_SIGNING_KEY: must be at least 16 bytes")
        return key
    return await trio.to_thread.run_sync(_read_or_create_key_file, Path(settings.data_dir) / SIGNING_KEY_FILE)
