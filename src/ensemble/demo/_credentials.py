"""The demo's credentials file: ``<data_dir>/demo-credentials.json``, mode 0600.

It holds the demo users' passwords (generated once, so every start prints the
same ones) and the demo hub's id and secret (the server stores only a key
derived from the secret, so the in-process hub agent needs this copy to sign
its hello).  A missing, unreadable or malformed file is not an error: the
seeding generates new passwords, resets the demo users to them, provisions a
new hub, and writes the file again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ensemble.log import get_logger

__all__ = ["CREDENTIALS_FILE", "DemoCredentials", "load_credentials", "save_credentials", "new_password"]

CREDENTIALS_FILE = "demo-credentials.json"
_VERSION = 1

log = get_logger("ensemble.demo")


def new_password() -> str:
    # 16 characters of the URL-safe alphabet (96 bits): easy to copy from a terminal.
    return secrets.token_urlsafe(12)


@dataclasses.dataclass
class DemoCredentials:
    passwords: dict[str, str] = dataclasses.field(default_factory=dict)  # email -> password
    hub_id: str | None = None
    hub_secret: str | None = None

    def to_json(self, users: list[dict[str, str]]) -> dict[str, Any]:
        document: dict[str, Any] = {
            "version": _VERSION,
            "note": "Ensemble demo credentials (ensemble serve --demo); delete the data directory to reset.",
            "users": users,
        }
        if self.hub_id and self.hub_secret:
            document["hub"] = {"id": self.hub_id, "secret": self.hub_secret}
        return document


def load_credentials(path: Path) -> DemoCredentials | None:
    """The stored credentials, or None when the file is missing or not ours (logged)."""
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("demo_credentials_unreadable", path=str(path), error=exc.strerror)
        return None
    try:
        data = json.loads(raw)
        return _parse(data)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("demo_credentials_invalid", path=str(path), error=str(exc) or type(exc).__name__)
        return None


def _parse(data: Any) -> DemoCredentials:
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise ValueError("not a version 1 demo credentials document")
    users = data["users"]
    if not isinstance(users, list):
        raise ValueError("users must be a list")
    passwords: dict[str, str] = {}
    for user in users:
        email, password = user["email"], user["password"]
        if not (isinstance(email, str) and isinstance(password, str) and email and len(password) >= 8):
            raise ValueError("every user needs an email and a password of 8 characters or more")
        passwords[email.lower()] = password
    hub = data.get("hub")
    hub_id = hub_secret = None
    if hub is not None:
        hub_id, hub_secret = hub["id"], hub["secret"]
        if not (isinstance(hub_id, str) and isinstance(hub_secret, str) and hub_id and hub_secret):
            raise ValueError("hub needs an id and a secret")
    return DemoCredentials(passwords=passwords, hub_id=hub_id, hub_secret=hub_secret)


def save_credentials(path: Path, credentials: DemoCredentials, users: list[dict[str, str]]) -> None:
    """Write the file atomically, readable by its owner only (0600, also when it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(credentials.to_json(users), indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # in case the umask took bits away from O_CREAT's mode: keep exactly 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
