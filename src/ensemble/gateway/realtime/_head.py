"""The first bytes of a connection: is it one of ours? (sans-IO)

The lane reads the HTTP request head itself, only far enough to route: a
WebSocket upgrade to a real-time path stays in the lane, everything else is
handed to Hypercorn together with the bytes already read.  The WebSocket
handshake proper (key, version, subprotocols, extensions) is validated by
wsproto afterwards; this parser only needs the method, target and headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["RequestHead", "head_end", "parse_head", "json_response"]

_TERMINATOR = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    path: str  # percent-decoded
    raw_path: str  # as sent; routes match on it so an encoded "/" stays inside its segment
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)  # lower-case names; repeated headers joined with ", "

    @property
    def wants_websocket(self) -> bool:
        upgrade = self.headers.get("upgrade", "").lower()
        connection = self.headers.get("connection", "").lower()
        return (
            self.method == "GET"
            and "websocket" in [token.strip() for token in upgrade.split(",")]
            and "upgrade" in [token.strip() for token in connection.split(",")]
        )


def head_end(buffer: bytes | bytearray) -> int:
    """Index just past the blank line ending the head, or -1 if not there yet."""
    index = buffer.find(_TERMINATOR)
    return -1 if index < 0 else index + len(_TERMINATOR)


def parse_head(data: bytes) -> RequestHead | None:
    """The request head, or None if it is not HTTP/1.x we understand (Hypercorn will answer)."""
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # latin-1 decodes anything; kept for clarity
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        return None
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    return RequestHead(
        method=method, target=target, path=unquote(raw_path), raw_path=raw_path, query=query, headers=headers
    )


def json_response(status: int, body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(payload)}",
        "connection: close",
    ]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
