"""Password hashing with Argon2id, off the event loop and bounded.

A hash costs tens of milliseconds of CPU and ``argon2_memory_kib`` of
memory, so it runs in a worker thread, and a ``CapacityLimiter`` caps how
many run at once: a burst of logins queues instead of exhausting memory or
starving the other threads.
"""

from __future__ import annotations

import argon2
import trio

from ensemble.config import Settings

__all__ = ["PasswordHasher"]


class PasswordHasher:
    def __init__(self, settings: Settings) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.limiter = trio.CapacityLimiter(settings.argon2_max_concurrency)
        # Verified against when the email is unknown, so that "no such user"
        # and "wrong password" take the same time.
        self._dummy_hash = self._hasher.hash("ensemble timing equaliser")

    async def hash(self, password: str) -> str:
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self.limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; an absent hash still costs one verification."""
        return await trio.to_thread.run_sync(self._verify, password_hash, password, limiter=self.limiter)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the stored hash used weaker parameters than configured now."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except argon2.exceptions.InvalidHashError:
            return True
