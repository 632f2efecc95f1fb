"""What a well-formed session command looks like.

Commands reach the session from REST bodies and from socket frames alike, so
the checks live here, next to the reducer, and both edges refuse the same
things with the same error: ``InvalidInput`` (422 / error frame
``invalid_input``) naming the field, or ``PayloadTooLarge`` (413 /
``payload_too_large``) naming the limit.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from ensemble.errors import InvalidInput, PayloadTooLarge

__all__ = [
    "MODES",
    "scrub",
    "json_scalars",
    "field_error",
    "client_id",
    "text",
    "optional_text",
    "client_time",
    "flag",
    "uuid_text",
    "reading",
    "iso",
]

MODES = ("guided", "expert", "quick")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_READING_KIND = re.compile(r"^[A-Za-z0-9_ .\-/]{1,64}$")
_MIN_YEAR, _MAX_YEAR = 2000, 2200


def field_error(name: str, message: str, summary: str | None = None) -> InvalidInput:
    return InvalidInput(summary or f"{name}: {message}", details=[{"field": name, "message": message}])


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _clean(name: str, value: str) -> str:
    if "\x00" in value:
        raise field_error(name, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise field_error(name, "must be valid Unicode") from None
    return value


def scrub(value: str) -> str:
    """Text from the server's own side (an assistant's answer): made storable rather than refused."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def json_scalars(value: Any) -> dict[str, Any]:
    """A flat mapping of JSON scalars (an assistant's usage report), anything else dropped."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, item in list(value.items())[:32]:
        if not isinstance(key, str):
            continue
        if isinstance(item, str):
            out[scrub(key)] = scrub(item)[:200]
        elif item is None or isinstance(item, (bool, int)) or (isinstance(item, float) and math.isfinite(item)):
            out[scrub(key)] = item
    return out


def client_id(value: Any) -> str | None:
    """The sender's id for a send; retries carry the same one."""
    if value is None:
        return None
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise field_error("client_id", "1-64 characters of A-Z a-z 0-9 _ . : -")
    return value


def text(name: str, value: Any, max_chars: int, *, strip: bool = True) -> str:
    if not isinstance(value, str):
        raise field_error(name, "required, a string")
    cleaned = _clean(name, value)
    if len(cleaned) > max_chars:
        raise PayloadTooLarge(
            f"{name} may be at most {max_chars} characters (got {len(cleaned)})",
            details=[{"field": name, "message": f"at most {max_chars} characters", "limit": max_chars}],
        )
    if not (cleaned.strip() if strip else cleaned):
        raise field_error(name, "must not be empty")
    return cleaned


def optional_text(name: str, value: Any, max_chars: int) -> str | None:
    if value is None:
        return None
    return text(name, value, max_chars)


def client_time(value: Any) -> str | None:
    """When the client says it sent the thing (offline queues send later): ISO 8601 with a zone."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise field_error("sent_at", "an ISO 8601 timestamp with a time zone")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise field_error("sent_at", "an ISO 8601 timestamp with a time zone") from None
    if parsed.tzinfo is None:
        raise field_error("sent_at", "needs a time zone (e.g. Z or +02:00)")
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        raise field_error("sent_at", f"must be between {_MIN_YEAR} and {_MAX_YEAR}")
    return parsed.astimezone(timezone.utc).isoformat()


def flag(name: str, value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise field_error(name, "must be true or false")
    return value


def uuid_text(name: str, value: Any, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise field_error(name, "required, a UUID" if required else "a UUID")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise field_error(name, "not a valid UUID") from None


def reading(command: dict[str, Any], max_note_chars: int) -> dict[str, Any]:
    """A structured measurement: what was measured, the number, its unit, on which equipment."""
    kind = command.get("kind")
    if not isinstance(kind, str) or not _READING_KIND.match(kind):
        raise field_error("kind", "1-64 characters naming the measurement (e.g. suction_pressure)")
    value = command.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise field_error("value", "required, a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise field_error("value", "must be a finite number")
    if abs(value) > 1e12:
        raise field_error("value", "out of range")
    unit = command.get("unit")
    if not isinstance(unit, str) or len(unit) > 16:
        raise field_error("unit", "required, a string of at most 16 characters (may be empty)")
    unit = _clean("unit", unit)
    return {
        "kind": kind,
        "value": value,
        "unit": unit,
        "equipment_id": uuid_text("equipment_id", command.get("equipment_id"), required=False),
        "note": optional_text("note", command.get("note"), max_note_chars),
    }
