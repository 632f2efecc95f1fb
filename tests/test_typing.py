"""mypy --strict on the packages CONVENTIONS holds to it (actors, hubs.protocol, the bridge)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
STRICT = [
    "src/ensemble/actors",
    "src/ensemble/hubs/protocol",
    "src/ensemble/bridge.py",
    "src/ensemble/persistence/actor_store.py",
]


@pytest.mark.slow
def test_strict_packages_type_check() -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *STRICT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
