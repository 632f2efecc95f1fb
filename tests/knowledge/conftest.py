"""Fixtures for the knowledge tests: the sample corpus and small documents."""

from __future__ import annotations

import pytest

from ensemble.knowledge import KnowledgeBase, load_samples


@pytest.fixture(scope="session")
def sample_kb() -> KnowledgeBase:
    """The bundled sample manuals as global documents (read-only in tests)."""
    kb = KnowledgeBase()
    load_samples(kb)
    return kb
