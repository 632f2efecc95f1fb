"""Object key rules, in one place.

Every key is a ``/``-separated path of non-empty segments.  Tenant data lives
under ``tenants/{tenant_id}/``; global content (equipment manuals, ...) under
a top-level namespace such as ``manuals/``.  The rules are deliberately
stricter than S3's so that the same key is safe as a filesystem path (local
backend), inside a URL path (signed download links) and in S3:

* no empty segments (``a//b``, leading or trailing ``/``), no ``.``/``..``;
* no backslash (a path separator on Windows tooling and some proxies);
* no NUL or other control characters (log injection, C-string truncation);
* no ``%``: we never URL-decode keys, but a proxy or route that decodes once
  more could turn ``%2e%2e`` into ``..``, so an escape is never a key;
* at most 1024 UTF-8 bytes in total (S3's limit) and 255 per segment (the
  usual filesystem name limit, so both backends accept the same keys).
"""

from __future__ import annotations

import re
import uuid

from ensemble.errors import InvalidInput

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_SEGMENT_BYTES",
    "TENANTS",
    "validate_key",
    "validate_prefix",
    "tenant_key",
    "tenant_prefix",
    "global_key",
    "validate_content_type",
    "validate_metadata",
]

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
TENANTS = "tenants"

# C0 controls, DEL and C1 controls.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\%]")


def _check_segment(segment: str, what: str, key: str) -> None:
    if segment == "":
        raise InvalidInput(f"{what} {key!r} has an empty path segment")
    if segment in (".", ".."):
        raise InvalidInput(f"{what} {key!r} contains a {segment!r} segment")
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise InvalidInput(f"{what} {key!r} has a segment longer than {MAX_SEGMENT_BYTES} bytes")


def _check_chars(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {type(value).__name__}")
    match = _FORBIDDEN_CHARS.search(value)
    if match is not None:
        raise InvalidInput(f"{what} {value!r} contains a forbidden character {match.group()!r}")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise InvalidInput(f"{what} {value!r} is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidInput(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    return value


def validate_key(key: object) -> str:
    """Return ``key`` unchanged if it is a valid object key, else raise ``InvalidInput``."""
    text = _check_chars(key, "object key")
    if text == "":
        raise InvalidInput("object key must not be empty")
    if text.startswith("/"):
        raise InvalidInput(f"object key {text!r} must be relative, not absolute")
    for segment in text.split("/"):
        _check_segment(segment, "object key", text)
    return text


def validate_prefix(prefix: object) -> str:
    """Validate a listing prefix: like a key, but may be empty, end with ``/``
    or end in a partial segment (``tenants/t1/pho`` matches ``photo.jpg``)."""
    text = _check_chars(prefix, "prefix")
    if text == "":
        return text
    if text.startswith("/"):
        raise InvalidInput(f"prefix {text!r} must be relative, not absolute")
    segments = text.split("/")
    if segments[-1] == "":  # trailing slash: "a/b/" is a directory-like prefix
        segments.pop()
    for segment in segments:
        _check_segment(segment, "prefix", text)
    return text


def _segment(value: object, what: str) -> str:
    if isinstance(value, uuid.UUID):
        value = str(value)
    text = _check_chars(value, what)
    if "/" in text:
        raise InvalidInput(f"{what} {text!r} must be a single path segment")
    _check_segment(text, what, text)
    return text


def tenant_prefix(tenant_id: str | uuid.UUID) -> str:
    """``tenants/{tenant_id}/``: everything a tenant owns starts with this."""
    return f"{TENANTS}/{_segment(tenant_id, 'tenant id')}/"


def tenant_key(tenant_id: str | uuid.UUID, *parts: str) -> str:
    """Build ``tenants/{tenant_id}/{part}/...``.

    Each part is exactly one segment, so a user-supplied file name can never
    add directories (or ``..``) of its own.
    """
    if not parts:
        raise InvalidInput("a tenant key needs at least one part after the tenant id")
    key = tenant_prefix(tenant_id) + "/".join(_segment(p, "key part") for p in parts)
    return validate_key(key)


def global_key(namespace: str, *parts: str) -> str:
    """Build a key for content shared by all tenants, e.g. ``manuals/carrier/x.pdf``.

    ``tenants`` is refused as a namespace: global keys must never be a way to
    address a tenant's data.
    """
    ns = _segment(namespace, "namespace")
    if ns == TENANTS:
        raise InvalidInput("use tenant_key() for tenant data; 'tenants' is not a global namespace")
    if not parts:
        raise InvalidInput("a global key needs at least one part after the namespace")
    return validate_key("/".join([ns, *(_segment(p, "key part") for p in parts)]))


# -- content type and metadata -------------------------------------------------------

_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?$")
# S3 lower-cases user-metadata names and sends them as HTTP headers; requiring
# lower-case header-safe names up front makes both backends return what was stored.
_META_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_META_VALUE = re.compile(r"^[\x20-\x7e]*$")
MAX_METADATA_BYTES = 2048  # S3's limit for all user metadata together


def validate_content_type(content_type: object) -> str:
    if not isinstance(content_type, str) or len(content_type) > 255 or not _CONTENT_TYPE.match(content_type):
        raise InvalidInput(f"invalid content type {content_type!r}")
    return content_type


def validate_metadata(metadata: object) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a mapping of strings to strings")
    total = 0
    out: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_NAME.match(name):
            raise InvalidInput(f"metadata name {name!r} must be lower-case letters, digits and '-'")
        if not isinstance(value, str) or not _META_VALUE.match(value) or value != value.strip():
            # HTTP headers carry these on S3: printable ASCII, no edge whitespace
            # (proxies strip it, so it would not round-trip).
            raise InvalidInput(f"metadata value for {name!r} must be printable ASCII without edge spaces")
        total += len(name) + len(value)
        out[name] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return out
