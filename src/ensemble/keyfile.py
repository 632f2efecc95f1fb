"""Secrets generated once into the data directory (JWT key, URL-signing key)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ensemble.errors import ConfigError

__all__ = ["read_or_create_key"]


def read_or_create_key(path: Path, *, min_bytes: int, what: str) -> bytes:
    """The hex key in ``path``; on first use, 32 random bytes written there (0600)."""
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write the whole key to a private temp file, then hard-link it into
        # place: link() fails if the name exists, so two processes starting at
        # once agree on one key, and nobody ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
        text = path.read_text("ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{path} does not contain a hex {what}") from None
    if len(key) < min_bytes:
        raise ConfigError(f"{path} holds a {what} shorter than {min_bytes} bytes")
    return key
