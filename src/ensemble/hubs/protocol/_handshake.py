"""HMAC handshake: a hub proves it holds its hub id's secret.

Theory of operation
-------------------
A hub is provisioned with ``(hub_id, secret)`` (``generate_hub_credentials``).
The server never stores ``secret``; it stores the *hub key*::

    key = HMAC-SHA256(key=secret.encode("utf-8"),
                      msg=b"ensemble-hub-key-v1\\n" + hub_id.encode("ascii"))

The secret is 256 random bits, so a fast keyed hash is as good as a slow KDF
here (scrypt/argon2 only help low-entropy passwords).  The key is bound to the
hub id and to this protocol: a leaked ``hubs`` row reveals neither the secret
nor a key usable for anything else.  It *is* still enough to sign hellos for
that hub, so it is a credential: store it as such.

On connect the hub signs, with that same derived key::

    canonical = b"ensemble-hub-auth-v1\\n" + hub_id + b"\\n" + str(timestamp) + b"\\n" + nonce
    signature = hex(HMAC-SHA256(key, canonical))          # 64 lowercase hex digits

where ``timestamp`` is Unix seconds as a decimal integer without sign or leading
zeros, and ``hub_id`` and ``nonce`` are ASCII from character sets without
``\\n`` (``HUB_ID_PATTERN``, ``NONCE_PATTERN``), so the joined string has exactly
one parse.  The version tag keeps a future format from ever colliding.

``HandshakeVerifier.verify`` refuses, each with its own message and
``details["reason"]``:

1. ``bad_signature``: the HMAC does not match (compared in constant time).
   Checked first, so unauthenticated peers cannot fill the nonce memory.
2. ``clock_skew``: ``|now - timestamp| > skew_s``.
3. ``replayed_nonce``: this hub already used this nonce.  A nonce is remembered
   for ``nonce_ttl_s`` (default and minimum ``2 * skew_s``: a hello stamped
   ``t`` verifies while ``now`` is within ``[t - skew, t + skew]``, so it may
   first arrive at ``t - skew`` and be replayed until ``t + skew``).

Memory is bounded by ``max_nonces``; when that many unexpired nonces are held
the verifier fails closed with ``Overloaded`` (retry later) rather than forget
a nonce early and reopen a replay window.  Time is always passed in.
"""

import dataclasses
import hashlib
import heapq
import hmac
import re
import secrets
import uuid
from typing import NamedTuple

from ensemble.errors import ConfigError, InvalidInput, Overloaded, Unauthenticated

from ._messages import HUB_ID_PATTERN, NONCE_PATTERN, HubHello

__all__ = [
    "HandshakeStatistics",
    "HandshakeVerifier",
    "HubCredentials",
    "canonical_hello",
    "derive_hub_key",
    "generate_hub_credentials",
    "new_nonce",
    "sign_hello",
    "sign_hello_with_key",
]

_KEY_CONTEXT = b"ensemble-hub-key-v1\n"
_AUTH_CONTEXT = b"ensemble-hub-auth-v1\n"
_HUB_ID = re.compile(HUB_ID_PATTERN)
_NONCE = re.compile(NONCE_PATTERN)
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class HubCredentials(NamedTuple):
    hub_id: str
    secret: str


def generate_hub_credentials() -> HubCredentials:
    """A fresh ``(hub_id, secret)``: a UUID4 and 256 bits of URL-safe randomness."""
    return HubCredentials(str(uuid.uuid4()), secrets.token_urlsafe(32))


def new_nonce() -> str:
    """A hello nonce: 128 random bits as 32 hex digits."""
    return secrets.token_hex(16)


def derive_hub_key(hub_id: str, secret: str) -> bytes:
    """The 32-byte key the server stores instead of ``secret``."""
    _check_hub_id(hub_id)
    if not secret:
        raise InvalidInput("secret: must not be empty", details={"field": "secret"})
    return hmac.digest(secret.encode("utf-8"), _KEY_CONTEXT + hub_id.encode("ascii"), hashlib.sha256)


def canonical_hello(hub_id: str, timestamp: int, nonce: str) -> bytes:
    """The exact bytes that are signed (see module docstring)."""
    _check_hub_id(hub_id)
    if type(timestamp) is not int or timestamp < 0:
        raise InvalidInput("timestamp: must be a non-negative integer", details={"field": "timestamp"})
    if _NONCE.fullmatch(nonce) is None:
        raise InvalidInput("nonce: must be 16-128 characters of A-Z a-z 0-9 _ -", details={"field": "nonce"})
    return b"%s%s\n%d\n%s" % (_AUTH_CONTEXT, hub_id.encode("ascii"), timestamp, nonce.encode("ascii"))


def sign_hello_with_key(hub_id: str, key: bytes, timestamp: int, nonce: str) -> str:
    """Hex HMAC-SHA256 of the canonical hello under an already-derived key."""
    return hmac.new(key, canonical_hello(hub_id, timestamp, nonce), hashlib.sha256).hexdigest()


def sign_hello(hub_id: str, secret: str, timestamp: int, nonce: str) -> str:
    """The hub side: sign a hello with the provisioned secret."""
    return sign_hello_with_key(hub_id, derive_hub_key(hub_id, secret), timestamp, nonce)


def _check_hub_id(hub_id: str) -> None:
    if _HUB_ID.fullmatch(hub_id) is None:
        raise InvalidInput("hub_id: must be 1-128 characters of A-Z a-z 0-9 . _ : -", details={"field": "hub_id"})


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeStatistics:
    nonces: int
    max_nonces: int


class HandshakeVerifier:
    """Server side: verifies hellos and remembers nonces (one per server process)."""

    def __init__(self, *, skew_s: float = 60.0, nonce_ttl_s: float | None = None, max_nonces: int = 100_000) -> None:
        if skew_s <= 0:
            raise ConfigError("skew_s must be positive")
        ttl = 2 * skew_s if nonce_ttl_s is None else nonce_ttl_s
        if ttl < 2 * skew_s:
            # A shorter memory would accept a replay of a hello whose timestamp
            # is still inside the skew window.
            raise ConfigError("nonce_ttl_s must be at least 2 * skew_s")
        if max_nonces < 1:
            raise ConfigError("max_nonces must be at least 1")
        self.skew_s = skew_s
        self.nonce_ttl_s = ttl
        self.max_nonces = max_nonces
        self._expires: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def verify(self, hub_id: str, key: bytes, timestamp: int, nonce: str, signature: str, now: float) -> None:
        """Return if the hello is authentic and fresh, else raise ``Unauthenticated``.

        ``key`` is the stored ``derive_hub_key(hub_id, secret)``; ``now`` the
        server's Unix time in seconds.  A nonce is recorded only on success.
        """
        expected = hmac.digest(key, canonical_hello(hub_id, timestamp, nonce), hashlib.sha256)
        # The pattern check only rejects malformed input early; the comparison
        # that decides is constant-time over equal-length bytes.
        given = bytes.fromhex(signature) if _SIGNATURE.fullmatch(signature) else b""
        if not hmac.compare_digest(expected, given):
            raise Unauthenticated("hub hello: bad signature", details={"reason": "bad_signature"})
        if abs(now - timestamp) > self.skew_s:
            raise Unauthenticated(
                f"hub hello: timestamp is {now - timestamp:+.0f} s off the server clock "
                f"(allowed clock skew {self.skew_s:g} s)",
                details={"reason": "clock_skew"},
            )
        self._expire(now)
        entry = (hub_id, nonce)
        if entry in self._expires:
            raise Unauthenticated("hub hello: nonce already used", details={"reason": "replayed_nonce"})
        if len(self._expires) >= self.max_nonces:
            raise Overloaded("hub hello: too many recent handshakes; retry later")
        expires = now + self.nonce_ttl_s
        self._expires[entry] = expires
        heapq.heappush(self._heap, (expires, entry))

    def verify_hello(self, hello: HubHello, key: bytes, now: float) -> None:
        """``verify`` with the fields of a decoded ``hub_hello``."""
        self.verify(hello.hub_id, key, hello.timestamp, hello.nonce, hello.signature, now)

    def statistics(self) -> HandshakeStatistics:
        return HandshakeStatistics(nonces=len(self._expires), max_nonces=self.max_nonces)

    def _expire(self, now: float) -> None:
        heap = self._heap
        # Strictly before now: at exactly expiry the timestamp may still be
        # inside the window (|now - t| == skew is accepted).
        while heap and heap[0][0] < now:
            _, entry = heapq.heappop(heap)
            del self._expires[entry]
