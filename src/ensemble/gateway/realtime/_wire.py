"""WebSocket frames as bytes, both directions, without I/O (sans-IO).

Outgoing: the server never masks (RFC 6455 5.1), so a frame is the same
bytes for every receiver of one wire format.  :class:`FrameBytesCache` keeps
the whole frame (header + payload) of the broadcasts in flight, so a
broadcast to N sockets costs one encoding per format (and per deflate
variant), then N ``send`` calls of the same ``bytes``.

Incoming: :func:`decode_message` turns one complete message into the dict a
handler sees, or raises :class:`BadFrame`.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import msgpack

from ensemble.actors import OutboundFrame, WireFormat, encode_json, encode_msgpack
from ensemble.gateway.realtime._errors import CLOSE_INVALID_DATA, BadFrame

__all__ = [
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "encode_frame",
    "close_frame",
    "message_frame",
    "deflate_payload",
    "FrameBytesCache",
    "decode_message",
]

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_FIN = 0x80
_RSV1 = 0x40  # "this message is compressed" under permessage-deflate

_short = struct.Struct("!BB").pack
_medium = struct.Struct("!BBH").pack
_long = struct.Struct("!BBQ").pack


def encode_frame(opcode: int, payload: bytes, *, compressed: bool = False) -> bytes:
    """One final, unmasked frame."""
    first = _FIN | opcode | (_RSV1 if compressed else 0)
    n = len(payload)
    if n < 126:
        return _short(first, n) + payload
    if n < 65536:
        return _medium(first, 126, n) + payload
    return _long(first, 127, n) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    # Control frames carry at most 125 bytes: 2 for the code, 123 for the reason.
    raw = reason.encode("utf-8")[:123]
    while raw:
        try:
            raw.decode("utf-8")
            break
        except UnicodeDecodeError:  # cut inside a character
            raw = raw[:-1]
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + raw)


def deflate_payload(payload: bytes, window_bits: int) -> bytes:
    """permessage-deflate without context takeover: the same input always
    gives the same output, which is what lets compressed frames be shared."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data


def _payload_frame(payload: str | bytes, deflate_bits: int) -> bytes:
    if isinstance(payload, str):
        opcode, raw = OP_TEXT, payload.encode("utf-8")
    else:
        opcode, raw = OP_BINARY, payload
    if deflate_bits:
        return encode_frame(opcode, deflate_payload(raw, deflate_bits), compressed=True)
    return encode_frame(opcode, raw)


def message_frame(message: dict[str, Any], fmt: WireFormat, deflate_bits: int = 0) -> bytes:
    """A one-off message (a reply, an error) as frame bytes."""
    payload: str | bytes = encode_json(message) if fmt == "json" else encode_msgpack(message)
    return _payload_frame(payload, deflate_bits)


class FrameBytesCache:
    """Frame bytes of recent broadcasts, per wire format and deflate window.

    ``OutboundFrame`` caches its payload encodings but has no room for the
    frame bytes (it has ``__slots__``), so they live here, keyed by the frame
    object.  A broadcast is written to all its receivers in one synchronous
    loop, so the last frame is almost always the one asked for; a few older
    ones are kept for receivers that drain later.  Entries hold the frame
    itself, so an ``id`` is never reused while its entry lives.
    """

    __slots__ = ("_entries", "_last", "_size", "misses")

    def __init__(self, size: int = 64) -> None:
        self._entries: dict[int, list[Any]] = {}
        self._last: list[Any] = [None, None, None, None]
        self._size = size
        self.misses = 0

    def get(self, frame: OutboundFrame, fmt: WireFormat, deflate_bits: int = 0) -> bytes:
        entry = self._last
        if entry[0] is not frame:
            entry = self._lookup(frame)
        if deflate_bits:
            return self._variant(entry, frame, fmt, deflate_bits)
        slot = 1 if fmt == "json" else 2
        data: bytes | None = entry[slot]
        if data is None:
            self.misses += 1
            data = entry[slot] = _payload_frame(frame.encoded(fmt), 0)
        return data

    def _lookup(self, frame: OutboundFrame) -> list[Any]:
        entries = self._entries
        entry = entries.get(id(frame))
        if entry is None or entry[0] is not frame:
            # [frame, json frame bytes, msgpack frame bytes, {(fmt, bits): deflated}]
            entry = [frame, None, None, None]
            entries[id(frame)] = entry
            if len(entries) > self._size:
                del entries[next(iter(entries))]
        self._last = entry
        return entry

    def _variant(self, entry: list[Any], frame: OutboundFrame, fmt: WireFormat, bits: int) -> bytes:
        variants: dict[tuple[str, int], bytes] | None = entry[3]
        if variants is None:
            variants = entry[3] = {}
        data = variants.get((fmt, bits))
        if data is None:
            self.misses += 1
            data = variants[(fmt, bits)] = _payload_frame(frame.encoded(fmt), bits)
        return data


def decode_message(payload: str | bytes) -> dict[str, Any]:
    """A complete incoming message: text is JSON, binary is msgpack; an object either way."""
    value: Any
    if isinstance(payload, str):
        try:
            value = json.loads(payload)
        except (ValueError, RecursionError):
            raise BadFrame(CLOSE_INVALID_DATA, "text frame is not valid JSON") from None
        kind = "a JSON object"
    else:
        try:
            value = msgpack.unpackb(payload, raw=False)
        except Exception:  # msgpack raises ValueError, TypeError, its own errors...
            raise BadFrame(CLOSE_INVALID_DATA, "binary frame is not valid msgpack") from None
        kind = "a msgpack map"
    if not isinstance(value, dict):
        raise BadFrame(CLOSE_INVALID_DATA, f"a message must be {kind}")
    return value
