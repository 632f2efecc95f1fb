"""Fixtures for the knowledge service: private databases, the fake Anthropic API, a PDF manual, tenants.

These tests write global manuals (visible to every tenant of a database),
so they never use the suite's shared database: ``kdb_url`` is one private
database for this directory, ``fresh_db_url`` a new one per test for tests
that assert on global manuals.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ensemble.config import Settings
from ensemble.log import configure_logging
from ensemble.persistence.database import Database, open_database
from ensemble.server import Services, open_services
from ensemble.testing import ScratchPostgres
from tests.knowledge.helpers import pdf_of
from tests.server import TEST_SETTINGS

from .fake_anthropic import FakeAnthropic, open_fake_anthropic

# A three-page PDF manual; the answer to "what does code E7 mean" is on page 2.
MANUAL_PDF = pdf_of(
    [
        [("h1", "Specifications"), ("p", "The Zephyr ZX-90 condenser uses R-410A refrigerant and a scroll compressor. "
                                         "Nominal capacity is 3 tons at 95 F outdoor temperature.")],
        [("h1", "Troubleshooting"), ("h2", "Flash codes"),
         ("p", "Code E7 means the outdoor fan motor is locked. Check the fan capacitor (5 uF, 370 V) and free the "
               "fan blade before replacing the motor."),
         ("p", "Code E3 means high discharge pressure: clean the outdoor coil.")],
        [("h1", "Maintenance"), ("p", "Clean the outdoor coil every spring and replace filters every three months.")],
    ],
    title="Zephyr ZX-90 Service Manual",
)
E7_QUESTION = "What does code E7 mean on the outdoor unit?"


@pytest.fixture(scope="session")
def kdb_url(postgres: ScratchPostgres) -> str:
    return postgres.create_migrated_database("ens_knowledge")


@pytest.fixture
def fresh_db_url(postgres: ScratchPostgres) -> str:
    return postgres.create_migrated_database("ens_knowledge")


@pytest.fixture
async def kdb(bridge: Any, kdb_url: str) -> AsyncIterator[Database]:
    async with open_database(bridge, kdb_url, min_size=1, max_size=4) as database:
        yield database


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with open_fake_anthropic() as server:
        yield server


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **TEST_SETTINGS,
        "database_url": database_url,
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": 0,
        "s3_endpoint": None,
        "jwt_secret": None,
        "signing_key": None,
        "ai_assistant": "auto",
        "anthropic_api_key": None,
    }
    values.update(overrides)
    return Settings(**values)


def online(fake: FakeAnthropic, **overrides: Any) -> dict[str, Any]:
    """Settings overrides that point the assistant at the fake API."""
    return {"anthropic_api_key": "sk-ant-test", "ai_base_url": fake.url, "ai_max_retries": 0, **overrides}


@pytest.fixture
def services_factory(tmp_path: Path) -> Callable[..., Any]:
    """``async with services_factory(database_url, **settings) as services``: the server's services, no HTTP."""

    @asynccontextmanager
    async def _open(database_url: str, *, data_dir: Path | None = None, **overrides: Any) -> AsyncIterator[Services]:
        settings = settings_for(database_url, data_dir or tmp_path / "data", **overrides)
        configure_logging(settings.log_level, "console")
        async with open_services(settings) as services:
            yield services

    return _open


async def new_tenant(db: Database, name: str = "Tenant") -> uuid.UUID:
    tenant_id = uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3)", tenant_id, name, f"t-{tenant_id.hex[:12]}")
    return tenant_id
