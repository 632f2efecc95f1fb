"""Telemetry history: buckets computed by hand, JSON == msgpack, bounded answers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest

from tests.hubs._helpers import add_printer, running_gateway, signup

DAY0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
MS0 = int(DAY0.timestamp() * 1000)

# (seconds after DAY0, nozzle_temp, bed_temp)
SAMPLES = [
    (0, 200.0, 60.0),
    (10, None, 70.0),
    (30, 210.0, 62.0),
    (59, 220.0, 64.0),
    (60, 230.0, 66.0),
    (299, 240.0, 68.0),
    (300, 250.0, 60.0),
    (3600, 100.0, 30.0),
    (86405, 50.0, 25.0),
]


def bucket(offset_s: int, avg: float, lo: float, hi: float, count: int) -> dict:
    return {"ts": MS0 + offset_s * 1000, "avg": pytest.approx(avg), "min": lo, "max": hi, "count": count}


# Worked out by hand from SAMPLES (buckets aligned to the epoch, in UTC).
EXPECTED = {
    "1min": {
        "nozzle_temp": [bucket(0, 210, 200, 220, 3), bucket(60, 230, 230, 230, 1), bucket(240, 240, 240, 240, 1),
                        bucket(300, 250, 250, 250, 1), bucket(3600, 100, 100, 100, 1), bucket(86400, 50, 50, 50, 1)],
        "bed_temp": [bucket(0, 64, 60, 70, 4), bucket(60, 66, 66, 66, 1), bucket(240, 68, 68, 68, 1),
                     bucket(300, 60, 60, 60, 1), bucket(3600, 30, 30, 30, 1), bucket(86400, 25, 25, 25, 1)],
    },
    "5min": {
        "nozzle_temp": [bucket(0, 220, 200, 240, 5), bucket(300, 250, 250, 250, 1), bucket(3600, 100, 100, 100, 1),
                        bucket(86400, 50, 50, 50, 1)],
        "bed_temp": [bucket(0, 65, 60, 70, 6), bucket(300, 60, 60, 60, 1), bucket(3600, 30, 30, 30, 1),
                     bucket(86400, 25, 25, 25, 1)],
    },
    "1hr": {
        "nozzle_temp": [bucket(0, 225, 200, 250, 6), bucket(3600, 100, 100, 100, 1), bucket(86400, 50, 50, 50, 1)],
        "bed_temp": [bucket(0, 450 / 7, 60, 70, 7), bucket(3600, 30, 30, 30, 1), bucket(86400, 25, 25, 25, 1)],
    },
    "1day": {
        "nozzle_temp": [bucket(0, 1450 / 7, 100, 250, 7), bucket(86400, 50, 50, 50, 1)],
        "bed_temp": [bucket(0, 60, 30, 70, 8), bucket(86400, 25, 25, 25, 1)],
    },
}


async def insert_samples(services, tenant_id: str, printer_id: str, rows) -> None:
    hub = uuid.uuid4()

    async def write(conn):
        await conn.executemany(
            "INSERT INTO printer_samples (printer_id, ts, tenant_id, hub_id, status, nozzle_temp, bed_temp)"
            " VALUES ($1, $2, $3, $4, 'printing', $5, $6)",
            [(uuid.UUID(printer_id), DAY0 + timedelta(seconds=s), uuid.UUID(tenant_id), hub, n, b) for s, n, b in rows],
        )

    await services.db.run(write)


QUERY = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-03T00:00:00Z", "metrics": "nozzle_temp,bed_temp"}


async def test_buckets_match_hand_computed_values_in_json_and_msgpack(database_url: str, tmp_path: Path) -> None:
    async with running_gateway(database_url, tmp_path / "data") as gw, gw.client() as http:
        owner = await signup(http)
        printer = await add_printer(owner, None)
        await insert_samples(gw.services, owner.tenant_id, printer["id"], SAMPLES)
        url = f"/api/v1/printers/{printer['id']}/telemetry"
        for interval, expected in EXPECTED.items():
            r = await owner.get(url, params={**QUERY, "interval": interval})
            assert r.status_code == 200, r.text
            body = r.json()["data"]
            assert body["interval"] == interval
            series = {s["metric"]: s["points"] for s in body["series"]}
            for metric, points in expected.items():
                got = [{k: p[k] for k in ("ts", "avg", "min", "max", "count")} for p in series[metric]]
                assert got == points, (interval, metric)
            packed = await owner.get(url, params={**QUERY, "interval": interval},
                                     headers={"Accept": "application/vnd.msgpack"})
            assert packed.status_code == 200
            assert packed.headers["content-type"].startswith("application/vnd.msgpack")
            assert msgpack.unpackb(packed.content, raw=False) == r.json()  # the same numbers, bit for bit

        raw = await owner.get(url, params={**QUERY, "interval": "raw"})
        series = {s["metric"]: s["points"] for s in raw.json()["data"]["series"]}
        assert [p["ts"] for p in series["bed_temp"]] == [MS0 + s * 1000 for s, _, _ in SAMPLES]
        assert [p["value"] for p in series["nozzle_temp"]] == [n for _, n, _ in SAMPLES if n is not None]

        # A range that excludes the last sample (end is exclusive).
        r = await owner.get(url, params={**QUERY, "end": "2024-01-02T00:00:05Z", "interval": "1day"})
        assert [p["count"] for p in r.json()["data"]["series"][0]["points"]] == [7]


async def test_too_large_answers_are_refused_with_a_suggestion(database_url: str, tmp_path: Path) -> None:
    async with running_gateway(database_url, tmp_path / "data", telemetry_max_points=100) as gw, gw.client() as http:
        owner = await signup(http)
        printer = await add_printer(owner, None)
        await insert_samples(gw.services, owner.tenant_id, printer["id"],
                             [(i * 3, 200.0 + i % 7, 60.0) for i in range(200)])  # 10 minutes of samples
        url = f"/api/v1/printers/{printer['id']}/telemetry"
        params = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z", "metrics": "nozzle_temp"}
        r = await owner.get(url, params={**params, "interval": "raw"})
        assert r.status_code == 413
        body = r.json()
        assert body["error"] == "payload_too_large"
        assert body["details"]["estimated_points"] == 200 and body["details"]["max_points"] == 100
        assert body["details"]["suggested_interval"] == "1min"
        assert "use interval=1min" in body["details"]["suggestions"]
        ok = await owner.get(url, params={**params, "interval": "1min"})
        assert ok.status_code == 200
        points = ok.json()["data"]["series"][0]["points"]
        assert len(points) == 10 and sum(p["count"] for p in points) == 200


async def test_bad_queries_and_other_tenants(database_url: str, tmp_path: Path) -> None:
    async with running_gateway(database_url, tmp_path / "data") as gw, gw.client() as http:
        owner = await signup(http)
        other = await signup(http, "Other Farm")
        printer = await add_printer(owner, None)
        url = f"/api/v1/printers/{printer['id']}/telemetry"
        for params, field in [
            ({"start": "2024-01-01T00:00:00Z", "interval": "2min"}, "interval"),
            ({"start": "2024-01-01T00:00:00Z", "metrics": "nozzle_temp,humidity"}, "metrics"),
            ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "end"),
            ({"start": "2020-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "start"),
            ({"interval": "1min"}, "start"),
        ]:
            r = await owner.get(url, params=params)
            assert r.status_code == 422, (params, r.text)
            assert field in {d["field"] for d in r.json()["details"]}, r.text
        r = await other.get(url, params={"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
