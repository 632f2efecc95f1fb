"""Configuration: defaults need nothing; bad values fail with one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ensemble.config import describe_settings, load_settings
from ensemble.errors import ConfigError


def test_defaults_need_nothing_external(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ENSEMBLE_DATABASE_URL", "ENSEMBLE_S3_ENDPOINT", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.embedded_postgres and s.object_store_kind == "local"
    assert (s.host, s.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("ENSEMBLE_PORT", "eighty", "ENSEMBLE_PORT"),
        ("ENSEMBLE_PORT", "70000", "ENSEMBLE_PORT"),
        ("ENSEMBLE_DATABASE_URL", "mysql://x", "ENSEMBLE_DATABASE_URL"),
        ("ENSEMBLE_S3_ENDPOINT", "minio:9000", "ENSEMBLE_S3_ENDPOINT"),
        ("ENSEMBLE_LOG_LEVEL", "loud", "ENSEMBLE_LOG_LEVEL"),
        ("ENSEMBLE_ACTOR_MAILBOX_SIZE", "0", "ENSEMBLE_ACTOR_MAILBOX_SIZE"),
        ("ENSEMBLE_CORS_ORIGINS", "not json", "ENSEMBLE_CORS_ORIGINS"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, var: str, value: str, needle: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert needle in info.value.message
    assert "\n" not in info.value.message


def test_pool_bounds_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENSEMBLE_DB_POOL_MIN", "20")
    monkeypatch.setenv("ENSEMBLE_DB_POOL_MAX", "5")
    with pytest.raises(ConfigError, match="db_pool_min"):
        load_settings()


def test_config_command_masks_secrets() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ENSEMBLE_DATABASE_URL": "postgresql://u:hunter2@db/x",
        "ANTHROPIC_API_KEY": "sk-ant-secret",
        "ENSEMBLE_JWT_SECRET": "topsecret",
    }
    out = subprocess.run([sys.executable, "-m", "ensemble.cli", "config"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["ENSEMBLE_DATABASE_URL"] == "********"
    assert shown["ANTHROPIC_API_KEY"] == "********"
    assert "hunter2" not in out.stdout and "sk-ant-secret" not in out.stdout and "topsecret" not in out.stdout
    assert describe_settings(load_settings())["ENSEMBLE_PORT"] == 8080


def test_bad_config_fails_cli_with_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "ENSEMBLE_PORT": "x"}
    out = subprocess.run([sys.executable, "-m", "ensemble.cli", "serve"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "ensemble: invalid setting ENSEMBLE_PORT: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_configuration_reference_is_current() -> None:
    from pathlib import Path

    from ensemble.config import settings_markdown

    doc = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert doc.read_text() == settings_markdown(), "run: ensemble config --markdown > docs/configuration.md"
