"""Printer telemetry history: raw samples or avg/min/max/count buckets, JSON or msgpack.

The answer is bounded (``ENSEMBLE_TELEMETRY_MAX_POINTS``): a query that would
return more points is refused with 413 *before* it runs, with the finest
interval that would fit as a suggestion.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import Field, field_validator

from ensemble.errors import InvalidInput, PayloadTooLarge
from ensemble.gateway._routing import Api, Call, item
from ensemble.gateway._validation import Item, QueryModel, ResponseModel, Timestamp
from ensemble.persistence.repos import printers, telemetry

api = Api("telemetry", tag="Telemetry")

Interval = Literal["raw", "1min", "5min", "1hr", "1day"]
DEFAULT_METRICS = ("nozzle_temp", "bed_temp", "progress")
MAX_RANGE = timedelta(days=400)


class TelemetryQuery(QueryModel):
    start: Timestamp = Field(description="Start of the range (inclusive), ISO 8601 with a UTC offset.")
    end: Timestamp | None = Field(None, description="End of the range (exclusive); default now.")
    interval: Interval = Field("1min", description="raw samples, or buckets of 1min/5min/1hr/1day (UTC-aligned).")
    metrics: str | None = Field(
        None, description=f"Comma-separated, from {', '.join(telemetry.METRICS)}; default {', '.join(DEFAULT_METRICS)}."
    )

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in telemetry.METRICS]
        if not names or unknown:
            raise ValueError(f"must be a comma-separated list of {', '.join(telemetry.METRICS)}")
        return ",".join(dict.fromkeys(names))


class Point(ResponseModel):
    ts: int = Field(description="Unix milliseconds: the sample time, or the start of the bucket.")
    value: float | None = None
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None


class Series(ResponseModel):
    metric: str
    points: list[Point]


class TelemetryOut(ResponseModel):
    printer_id: uuid.UUID
    interval: Interval
    start: datetime
    end: datetime
    series: list[Series]


@api.route(
    "GET", "/printers/<uuid:printer_id>/telemetry", permission="telemetry.read", query=TelemetryQuery,
    response=Item[TelemetryOut], errors=(404, 413),
    summary="Printer status history: raw samples or avg/min/max/count per bucket",
)
async def printer_telemetry(call: Call, printer_id: uuid.UUID) -> Any:
    q: TelemetryQuery = call.query
    end = q.end or datetime.now(timezone.utc)
    if end <= q.start:
        raise InvalidInput("end must be after start", details=[{"field": "end", "message": "must be after start"}])
    if end - q.start > MAX_RANGE:
        raise InvalidInput("the range is too long", details=[{"field": "start", "message": "at most 400 days"}])
    metrics = tuple(q.metrics.split(",")) if q.metrics else DEFAULT_METRICS
    await call.db.run(printers.get, call.tenant_id, printer_id)  # 404 for another tenant's printer
    limit = call.services.settings.telemetry_max_points
    estimates = await call.db.run(
        telemetry.estimate_points, call.tenant_id, printer_id, q.start, end, q.interval, len(metrics)
    )
    if estimates[q.interval] > limit:
        better = telemetry.suggest_interval(estimates, limit)
        suggestions = []
        if better is not None:
            suggestions.append(f"use interval={better}")
        suggestions += ["narrow the time range", "ask for fewer metrics"]
        raise PayloadTooLarge(
            f"this query would return {estimates[q.interval]} points; the limit is {limit}",
            details={
                "estimated_points": estimates[q.interval],
                "max_points": limit,
                "suggested_interval": better,
                "suggestions": suggestions,
            },
        )
    series = await call.db.run(telemetry.query, call.tenant_id, printer_id, q.start, end, q.interval, metrics)
    return item({"printer_id": printer_id, "interval": q.interval, "start": q.start, "end": end, "series": series})
