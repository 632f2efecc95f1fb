"""Logging survives sys.stderr being replaced (pytest's capture, daemon redirection)."""

from __future__ import annotations

import io
import sys

import pytest

from ensemble.log import configure_logging, get_logger


def test_a_cached_logger_follows_stderr_after_the_old_one_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", "json")
    log = get_logger("ensemble.test_logging")
    log.info("first_line")
    assert '"event": "first_line"' in first.getvalue()

    first.close()  # as pytest closes a test's capture
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("second_line")  # the same cached logger
    assert '"event": "second_line"' in second.getvalue()
