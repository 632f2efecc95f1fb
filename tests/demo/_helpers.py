"""Helpers for the demo tests: row counts, the printed credentials, logging in."""

from __future__ import annotations

import re
from typing import Any

import httpx

from ensemble.persistence.database import Database

# Everything the demo may create; a second seeding must leave every count as it was.
TABLES = (
    "tenants", "users", "memberships", "hubs", "printers", "files", "print_jobs", "print_job_transitions",
    "knowledge_documents", "audit_log",
)

DEMO_EMAILS = {
    "owner@demo.ensemble.local": "owner",
    "technician1@demo.ensemble.local": "technician",
    "technician2@demo.ensemble.local": "technician",
    "viewer@demo.ensemble.local": "viewer",
}

_ROW = re.compile(r"│\s*(\w+)\s*│[^│\n]*│\s*(\S+@demo\.ensemble\.local)\s*│\s*(\S+)\s*│")


async def count_rows(db: Database) -> dict[str, int]:
    async def run(conn: Any) -> dict[str, int]:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}

    counts: dict[str, int] = await db.run(run)
    return counts


def printed_credentials(text: str) -> dict[str, tuple[str, str]]:
    """``email -> (role, password)`` from the banner's table."""
    return {email: (role, password) for role, email, password in _ROW.findall(text)}


async def login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


async def login_token(http: httpx.AsyncClient, email: str, password: str) -> str:
    r = await login(http, email, password)
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["access_token"])
