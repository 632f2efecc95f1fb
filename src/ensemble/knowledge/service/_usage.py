"""The AI usage report: the ledger summed per UTC day (and per model within a day)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from ensemble.errors import InvalidInput
from ensemble.persistence.repos import knowledge as repo

if TYPE_CHECKING:
    from ensemble.persistence.database import Database

__all__ = ["UsageReport", "usage_report", "MAX_DAYS"]

MAX_DAYS = 366
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
# Ledger outcome -> counter name in the report.
_OUTCOMES = {"answered": "answered", "cache_hit": "cache_hits", "offline": "offline", "failed": "failed"}


class UsageReport(TypedDict):
    start: date
    end: date
    days: list[dict[str, Any]]
    totals: dict[str, Any]


def _zero() -> dict[str, Any]:
    return {"requests": 0, **{v: 0 for v in _OUTCOMES.values()}, **{t: 0 for t in _TOKENS}, "cost_usd": 0.0}


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    n = int(row["requests"])
    into["requests"] += n
    into[_OUTCOMES[row["outcome"]]] += n
    for t in _TOKENS:
        into[t] += int(row[t] or 0)
    into["cost_usd"] = round(into["cost_usd"] + float(row["cost_usd"] or 0), 6)


async def usage_report(db: "Database", tenant_id: uuid.UUID, start: date, end: date) -> UsageReport:
    """Every day of ``start..end`` (inclusive, UTC), zeros included, with per-model lines and totals."""
    if end < start:
        raise InvalidInput("'to' is before 'from'", details=[{"field": "to", "message": "must not be before from"}])
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"a report covers at most {MAX_DAYS} days", details=[{"field": "to", "message": f"at most {MAX_DAYS} days after from"}]
        )
    rows = await db.run(repo.usage_report, tenant_id, start, end)
    days: dict[date, dict[str, Any]] = {}
    day = start
    while day <= end:
        days[day] = {"day": day, **_zero(), "models": {}}
        day += timedelta(days=1)
    totals = _zero()
    for row in rows:
        entry = days[row["day"]]
        _add(entry, row)
        _add(entry["models"].setdefault(row["model"], {"model": row["model"], **_zero()}), row)
        _add(totals, row)
    answered_or_hit = totals["answered"] + totals["cache_hits"]
    totals["cache_hit_rate"] = round(totals["cache_hits"] / answered_or_hit, 4) if answered_or_hit else 0.0
    out = [{**entry, "models": list(entry["models"].values())} for entry in days.values()]
    return {"start": start, "end": end, "days": out, "totals": totals}
