"""Fixtures for the demo tests: a fresh database per test (the demo's emails are global)."""

from __future__ import annotations

import logging

import pytest

from ensemble.testing import ScratchPostgres

# asyncua logs every session's security choices at WARNING.
logging.getLogger("asyncua").setLevel(logging.ERROR)


@pytest.fixture
def fresh_database_url(postgres: ScratchPostgres) -> str:
    """A migrated database of this test's own: the demo users' emails are unique per database."""
    return str(postgres.create_migrated_database("ens_demo"))
