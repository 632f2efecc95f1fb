"""Structured logging: JSON lines when stderr is not a terminal, pretty otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger"]


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written.

    Loggers are cached on first use, each holding the file it was given; if
    that were the ``sys.stderr`` of the moment, replacing it later (pytest's
    capture does, per test) would leave cached loggers writing to a closed
    file.  Looking it up per line costs one attribute access.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # Libraries that use stdlib logging (hypercorn, asyncua, botocore) go to
    # stderr at warning level so they do not drown our own lines.
    logging.basicConfig(level=logging.WARNING, stream=_STDERR, format="%(levelname)s %(name)s: %(message)s")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
