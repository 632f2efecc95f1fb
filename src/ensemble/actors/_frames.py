"""Outbound frames, encoded at most once per wire format.

A broadcast goes to many connections in up to two formats (JSON text,
msgpack binary).  The frame caches each encoding the first time a connection
of that format asks for it, so a broadcast to N receivers costs two
encodings, not N.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgpack

__all__ = ["OutboundFrame", "WireFormat", "encode_json", "encode_msgpack"]

WireFormat = Literal["json", "msgpack"]

_json_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
_packer_default = str


def encode_json(message: dict[str, Any]) -> str:
    return _json_encoder.encode(message)


def encode_msgpack(message: dict[str, Any]) -> bytes:
    return msgpack.packb(message, default=_packer_default, use_bin_type=True)  # type: ignore[no-any-return]


class OutboundFrame:
    __slots__ = ("message", "coalesce_key", "_json", "_msgpack")

    def __init__(self, message: dict[str, Any], coalesce_key: Any = None) -> None:
        self.message = message
        self.coalesce_key = coalesce_key
        self._json: str | None = None
        self._msgpack: bytes | None = None

    @property
    def type(self) -> str:
        return str(self.message.get("type", ""))

    @property
    def offset(self) -> int | None:
        value = self.message.get("offset")
        return value if isinstance(value, int) else None

    def encoded(self, fmt: WireFormat) -> str | bytes:
        if fmt == "json":
            if self._json is None:
                self._json = encode_json(self.message)
            return self._json
        if self._msgpack is None:
            self._msgpack = encode_msgpack(self.message)
        return self._msgpack

    def __repr__(self) -> str:
        return f"OutboundFrame({self.message!r})"
