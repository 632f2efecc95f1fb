"""In-process token buckets with bounded memory.

Each key (client IP on auth routes, user, tenant, tenant uploads) has a
bucket of ``burst`` tokens refilled at ``rate`` per second.  A request
takes one token or is refused with the time until one is back (the
``Retry-After`` of the 429).

Memory stays bounded two ways: buckets live in an LRU order and the least
recently used is dropped beyond ``max_buckets``, and a periodic sweep drops
buckets that have refilled completely (a full bucket is the same as no
bucket).  Dropping a bucket that was not full under LRU pressure can give
one idle client a fresh burst; that is the price of the bound.

Limits are per process; with several nodes each enforces its own share.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ensemble.errors import RateLimited

__all__ = ["RateLimiter"]

_SWEEP_EVERY_S = 30.0
_SWEEP_MAX = 1000


class RateLimiter:
    def __init__(self, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_buckets = max_buckets
        self._clock = clock
        # key -> [tokens, last_update, time_to_full_s]
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()
        self._last_sweep = clock()

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, key: Hashable, *, per_period: int, period_s: float, what: str = "requests") -> None:
        """Take one token from ``key``'s bucket or raise ``RateLimited``."""
        now = self._clock()
        rate = per_period / period_s
        burst = float(per_period)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [burst, now, burst / rate]
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
        if now - self._last_sweep > _SWEEP_EVERY_S:
            self._sweep(now)
        if bucket[0] < 1.0:
            retry_after = (1.0 - bucket[0]) / rate
            raise RateLimited(
                f"too many {what}: limit {per_period} per {int(period_s)} s",
                retry_after=retry_after,
                details={"limit": per_period, "period_s": int(period_s), "retry_after_s": round(retry_after, 3)},
            )
        bucket[0] -= 1.0

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        # Oldest first: the front of the LRU order has been idle longest.
        checked = 0
        for key in list(self._buckets):
            tokens, last, time_to_full = self._buckets[key]
            if now - last >= time_to_full:
                del self._buckets[key]
            checked += 1
            if checked >= _SWEEP_MAX:
                break
