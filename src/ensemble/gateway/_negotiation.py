"""JSON and msgpack, both ways.

Responses are JSON unless the client's ``Accept`` prefers
``application/vnd.msgpack`` or ``application/x-msgpack``; request bodies are
read as JSON or msgpack according to ``Content-Type``.  Either way the data
is the same: everything is first turned into JSON-native values (UUIDs and
datetimes as strings) by the response models, so a msgpack client sees
exactly what a JSON client sees.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
from quart import Request, Response

from ensemble.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

__all__ = [
    "JSON",
    "MSGPACK",
    "MSGPACK_TYPES",
    "MalformedBody",
    "response_format",
    "encode",
    "make_response",
    "read_body",
]

JSON = "application/json"
MSGPACK = "application/vnd.msgpack"
MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")


class MalformedBody(InvalidInput):
    """The body does not parse at all (as opposed to parsing into wrong values)."""

    status = 400
    code = "malformed_body"


def response_format(request: Request) -> str:
    """The media type to answer with: JSON unless msgpack is preferred."""
    accept = request.accept_mimetypes
    if not accept:
        return JSON
    best = accept.best_match([JSON, *MSGPACK_TYPES], default=JSON)
    return best or JSON


def encode(data: Any, media_type: str) -> bytes:
    if media_type in MSGPACK_TYPES:
        packed: bytes = msgpack.packb(data, use_bin_type=True)
        return packed
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def make_response(request: Request, data: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    media_type = response_format(request)
    response = Response(encode(data, media_type), status=status, content_type=media_type)
    response.headers["Vary"] = "Accept"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON, whatever Python's json module accepts.
    raise ValueError(f"{name} is not valid JSON")


def _body_media_type(request: Request) -> str:
    return (request.mimetype or "").lower()


async def read_raw(request: Request, max_bytes: int) -> bytes:
    """The body, refusing to buffer more than ``max_bytes`` (declared or streamed)."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    chunks = bytearray()
    async for chunk in request.body:
        chunks += chunk
        if len(chunks) > max_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    return bytes(chunks)


async def read_body(request: Request, max_bytes: int) -> Any:
    """The decoded body, or ``None`` when there is none."""
    raw = await read_raw(request, max_bytes)
    if not raw:
        return None
    media_type = _body_media_type(request)
    if media_type == JSON or media_type.endswith("+json"):
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedBody(f"request body is not valid JSON: {type(exc).__name__}") from None
        return value
    if media_type in MSGPACK_TYPES:
        try:
            value = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, RecursionError) as exc:
            raise MalformedBody(f"request body is not valid msgpack: {type(exc).__name__}") from None
        return _check_msgpack_value(value)
    raise UnsupportedMediaType(
        f"send the body as {JSON} or {MSGPACK}",
        details={"content_type": media_type or None, "accepted": [JSON, *MSGPACK_TYPES]},
    )


def _check_msgpack_value(value: Any) -> Any:
    """Reject what JSON cannot carry (bytes, ext types, NaN), so both formats accept the same data."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise MalformedBody("msgpack map keys must be strings")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise MalformedBody("NaN and infinities are not allowed")
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            raise MalformedBody(f"msgpack value of type {type(item).__name__} has no JSON equivalent")
    return value
