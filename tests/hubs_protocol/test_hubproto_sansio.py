"""The protocol package stays sans-IO: no event loop, sockets or clocks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ensemble.hubs.protocol as protocol

PACKAGE = Path(protocol.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))

# Pure computation only.  Notably absent: trio, asyncio, socket, ssl,
# threading, time, datetime (clock reads), random (use secrets), pydantic.
ALLOWED = {
    "__future__",
    "collections",
    "collections.abc",
    "dataclasses",
    "enum",
    "hashlib",
    "heapq",
    "hmac",
    "json",
    "math",
    "msgpack",
    "re",
    "secrets",
    "types",
    "typing",
    "uuid",
    "ensemble.errors",
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_modules_found() -> None:
    assert {p.name for p in MODULES} >= {"__init__.py", "_codec.py", "_handshake.py", "_dashboard.py"}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_imports_only_pure_modules(path: Path) -> None:
    assert imports_of(path) - ALLOWED == set()


def test_public_names_are_exported() -> None:
    assert sorted(set(protocol.__all__)) == sorted(protocol.__all__)
    for name in protocol.__all__:
        assert hasattr(protocol, name), name
