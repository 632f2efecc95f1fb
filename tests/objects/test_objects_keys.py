"""The key builders and validators (pure functions, no store needed)."""

from __future__ import annotations

import uuid

import pytest

from ensemble.errors import InvalidInput
from ensemble.persistence.objects import (
    MAX_KEY_BYTES,
    global_key,
    tenant_key,
    tenant_prefix,
    validate_key,
    validate_prefix,
)


def test_tenant_keys_are_namespaced() -> None:
    tid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert tenant_key(tid, "parts", "1234-capacitor.jpg") == f"tenants/{tid}/parts/1234-capacitor.jpg"
    assert tenant_key("acme", "diagnostics", "session-abc", "photo-1.jpg") == (
        "tenants/acme/diagnostics/session-abc/photo-1.jpg"
    )
    assert tenant_prefix("acme") == "tenants/acme/"


def test_global_keys() -> None:
    assert global_key("manuals", "carrier", "24ACC6.pdf") == "manuals/carrier/24ACC6.pdf"
    assert global_key("knowledge-base", "procedures", "brazing.pdf") == "knowledge-base/procedures/brazing.pdf"


@pytest.mark.parametrize(
    "build",
    [
        lambda: tenant_key("acme"),  # no parts: the tenant root is not an object
        lambda: tenant_key("", "x"),
        lambda: tenant_key("a/b", "x"),  # a tenant id is one segment
        lambda: tenant_key("..", "x"),
        lambda: tenant_key("acme", "../other", "x"),
        lambda: tenant_key("acme", "sub/dir.jpg"),  # a part cannot add directories
        lambda: tenant_key("acme", ".."),
        lambda: tenant_key("acme", ""),
        lambda: tenant_key("acme", "a\\b"),
        lambda: tenant_key("acme", "x" * 256),
        lambda: tenant_key("acme", 7),  # type: ignore[arg-type]
        lambda: tenant_prefix("t/1"),
        lambda: global_key("tenants", "acme", "x"),  # global keys never reach tenant data
        lambda: global_key("manuals"),
        lambda: global_key("manuals/carrier", "x"),
        lambda: global_key("manuals", "%2e%2e", "x"),
    ],
)
def test_builders_refuse_bad_parts(build: object) -> None:
    with pytest.raises(InvalidInput):
        build()  # type: ignore[operator]


def test_length_limit_is_in_utf8_bytes() -> None:
    segment = "é" * 100  # 200 bytes
    key = "/".join([segment] * 5) + "/" + "a" * (MAX_KEY_BYTES - 5 * 201)
    assert len(key.encode()) == MAX_KEY_BYTES
    assert validate_key(key) == key
    with pytest.raises(InvalidInput):
        validate_key(key + "a")


@pytest.mark.parametrize("key", ["a", "a/b.c", "tenants/t1/..hidden", "tenants/t1/...", "x/ spaced name .pdf", "ü/日本"])
def test_unusual_but_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("prefix", ["", "tenants/", "tenants/t1", "tenants/t1/pho", "manuals/"])
def test_valid_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix
