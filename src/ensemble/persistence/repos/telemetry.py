"""Printer telemetry history: raw samples or avg/min/max/count per time bucket.

Samples are written by the HubConnection projection (``printer_samples``).
Buckets are aligned to the Unix epoch in UTC (a ``1hr`` bucket starts on the
hour, a ``1day`` bucket at 00:00 UTC) and labelled with their start.  A bucket
appears only if it holds at least one sample; ``count`` per metric counts the
samples where that metric was reported (not every printer reports every
metric).

Responses are bounded: :func:`estimate_points` says how many points a query
would return *before* it runs, and the route refuses with 413 (and the
coarsest interval that would fit) rather than build a huge body.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["METRICS", "INTERVALS", "estimate_points", "query", "suggest_interval"]

METRICS = ("nozzle_temp", "nozzle_target", "bed_temp", "bed_target", "progress", "layer", "remaining_s")
INTERVALS: dict[str, int | None] = {"raw": None, "1min": 60, "5min": 300, "1hr": 3600, "1day": 86400}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


async def _count_samples(conn: asyncpg.Connection, tenant_id: uuid.UUID, printer_id: uuid.UUID,
                         start: datetime, end: datetime) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM printer_samples WHERE tenant_id = $1 AND printer_id = $2 AND ts >= $3 AND ts < $4",
        tenant_id, printer_id, start, end,
    )
    return count


def _bucket_bound(start: datetime, end: datetime, width: int) -> int:
    """Most buckets a range can touch with epoch-aligned buckets of ``width`` seconds."""
    first = math.floor(start.timestamp() / width)
    last = math.floor((end.timestamp() - 1e-6) / width)
    return max(0, last - first + 1)


async def estimate_points(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, printer_id: uuid.UUID, start: datetime, end: datetime,
    interval: str, n_metrics: int,
) -> dict[str, int]:
    """Points each interval would return: raw counts samples, the others bound buckets by samples too."""
    samples = await _count_samples(conn, tenant_id, printer_id, start, end)
    out: dict[str, int] = {}
    for name, width in INTERVALS.items():
        rows = samples if width is None else min(samples, _bucket_bound(start, end, width))
        out[name] = rows * n_metrics
    return out


def suggest_interval(estimates: dict[str, int], limit: int) -> str | None:
    """The finest interval whose answer fits in ``limit`` points."""
    for name in INTERVALS:
        if estimates[name] <= limit:
            return name
    return None


async def query(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, printer_id: uuid.UUID, start: datetime, end: datetime,
    interval: str, metrics: tuple[str, ...],
) -> list[dict[str, Any]]:
    """``[{"metric", "points": [...]}]``: raw points ``{ts, value}``, bucket points ``{ts, avg, min, max, count}``."""
    for metric in metrics:
        if metric not in METRICS:  # names reach the SQL text: only ours may
            raise ValueError(f"unknown metric {metric!r}")
    width = INTERVALS[interval]
    if width is None:
        rows = await conn.fetch(
            f"SELECT ts, {', '.join(metrics)} FROM printer_samples"
            " WHERE tenant_id = $1 AND printer_id = $2 AND ts >= $3 AND ts < $4 ORDER BY ts",
            tenant_id, printer_id, start, end,
        )
        return [
            {"metric": m, "points": [{"ts": _ms(r["ts"]), "value": _num(r[m])} for r in rows if r[m] is not None]}
            for m in metrics
        ]
    columns = ", ".join(
        f"avg({m}::float8) AS {m}_avg, min({m}::float8) AS {m}_min, max({m}::float8) AS {m}_max, count({m}) AS {m}_n"
        for m in metrics
    )
    rows = await conn.fetch(
        f"SELECT (floor(extract(epoch FROM ts) / $5) * $5)::bigint AS bucket, {columns}"
        "  FROM printer_samples"
        " WHERE tenant_id = $1 AND printer_id = $2 AND ts >= $3 AND ts < $4"
        " GROUP BY bucket ORDER BY bucket",
        tenant_id, printer_id, start, end, width,
    )
    series = []
    for m in metrics:
        points = [
            {"ts": int(r["bucket"]) * 1000, "avg": r[f"{m}_avg"], "min": r[f"{m}_min"], "max": r[f"{m}_max"],
             "count": int(r[f"{m}_n"])}
            for r in rows
            if r[f"{m}_n"]
        ]
        series.append({"metric": m, "points": points})
    return series


def _num(value: Any) -> float | int:
    return value if isinstance(value, int) else float(value)
