"""The lane's sans-IO pieces as tables: bytes in, events out (and back)."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest

from ensemble.actors import OutboundFrame
from ensemble.gateway.realtime import BadFrame, realtime_route, unregister_route
from ensemble.gateway.realtime._head import head_end, json_response, parse_head
from ensemble.gateway.realtime._inbound import InboundParser, Message, PeerClose, Ping, Pong, ProtocolViolation, TooBig
from ensemble.gateway.realtime._routes import match_route
from ensemble.gateway.realtime._serve import choose_format
from ensemble.gateway.realtime._wire import FrameBytesCache, close_frame, decode_message, encode_frame, message_frame


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    ("wire", "events"),
    [
        (masked(0x1, b'{"a":1}'), [Message('{"a":1}')]),
        (masked(0x2, b"\x81\xa1a\x01"), [Message(b"\x81\xa1a\x01")]),
        (masked(0x1, b"ab", fin=False) + masked(0x0, b"cd"), [Message("abcd")]),
        (masked(0x9, b"p"), [Ping(b"p")]),
        (masked(0xA, b""), [Pong(b"")]),
        (masked(0x8, struct.pack("!H", 1000) + b"bye"), [PeerClose(1000, "bye")]),
        (masked(0x8, b""), [PeerClose(1005, "")]),
        # a ping between fragments is allowed and comes out first
        (masked(0x1, b"ab", fin=False) + masked(0x9, b"") + masked(0x0, b"cd"), [Ping(b""), Message("abcd")]),
        (masked(0x1, b"x" * 300), [Message("x" * 300)]),
        (masked(0x1, b"x" * 70_000), [TooBig(65_536)]),
        (encode_frame(0x1, b"unmasked"), [ProtocolViolation(1002, "server received unexpected unmasked frame")]),
        (masked(0x3, b""), [ProtocolViolation(1002, "Invalid opcode 0x3")]),
        (masked(0x0, b"x"), [ProtocolViolation(1002, "unexpected CONTINUATION")]),
    ],
)
def test_inbound_table(wire: bytes, events: list[object]) -> None:
    parser = InboundParser(65_536)
    # Byte by byte gives the same events as all at once.
    assert parser.receive(wire) == events
    one_by_one = InboundParser(65_536)
    got: list[object] = []
    for i in range(len(wire)):
        got += one_by_one.receive(wire[i : i + 1])
    assert got == events


def test_inbound_invalid_utf8_is_1007() -> None:
    (event,) = InboundParser(1024).receive(masked(0x1, b"\xff"))
    assert isinstance(event, ProtocolViolation) and event.code == 1007


def test_inbound_too_big_is_reported_once_and_the_next_message_parses() -> None:
    parser = InboundParser(10)
    events = parser.receive(masked(0x2, b"a" * 8, fin=False) + masked(0x0, b"b" * 8, fin=False))
    assert events == [TooBig(10)]
    assert parser.receive(masked(0x0, b"c" * 8) + masked(0x1, b"{}")) == [Message("{}")]


def test_inbound_counts_utf8_bytes_not_characters() -> None:
    assert InboundParser(10).receive(masked(0x1, "é".encode() * 6)) == [TooBig(10)]
    assert InboundParser(12).receive(masked(0x1, "é".encode() * 6)) == [Message("é" * 6)]


@pytest.mark.parametrize(
    ("opcode", "payload", "expected"),
    [
        (0x1, b"", b"\x81\x00"),
        (0x2, b"x" * 125, b"\x82\x7d" + b"x" * 125),
        (0x1, b"x" * 126, b"\x81\x7e\x00\x7e" + b"x" * 126),
        (0x2, b"x" * 65536, b"\x82\x7f" + struct.pack("!Q", 65536) + b"x" * 65536),
        (0xA, b"p", b"\x8a\x01p"),
    ],
)
def test_outgoing_frames(opcode: int, payload: bytes, expected: bytes) -> None:
    assert encode_frame(opcode, payload) == expected


def test_close_frame_truncates_reason_on_a_character_boundary() -> None:
    frame = close_frame(4100, "é" * 100)
    assert frame[0] == 0x88 and frame[1] <= 125
    assert struct.unpack("!H", frame[2:4])[0] == 4100
    frame[4:].decode("utf-8")


def test_message_frame_formats() -> None:
    assert message_frame({"a": 1}, "json") == b'\x81\x07{"a":1}'
    assert message_frame({"a": 1}, "msgpack") == b"\x82\x04" + msgpack.packb({"a": 1})


def test_frame_cache_encodes_once_per_format() -> None:
    cache = FrameBytesCache(size=2)
    frame = OutboundFrame({"type": "x", "offset": 1})
    first = cache.get(frame, "json")
    assert cache.get(frame, "json") is first
    assert cache.get(frame, "msgpack") == b"\x82" + bytes([len(frame.encoded("msgpack"))]) + frame.encoded("msgpack")
    assert cache.misses == 2
    others = [OutboundFrame({"n": i}) for i in range(3)]
    for other in others:
        cache.get(other, "json")
    # Evicted (size 2) and re-encoded; never confused with another frame.
    assert cache.get(frame, "json") == first
    assert cache.misses == 6


def test_deflate_variant_is_shared_and_decodes() -> None:
    import zlib

    cache = FrameBytesCache()
    frame = OutboundFrame({"type": "x", "text": "hello " * 50})
    data = cache.get(frame, "json", 15)
    assert cache.get(frame, "json", 15) is data
    assert data[0] == 0xC1  # FIN + RSV1 + text
    length = data[1] if data[1] < 126 else struct.unpack("!H", data[2:4])[0]
    body = data[-length:]
    assert zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff").decode() == frame.encoded("json")


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        ('{"type":"x"}', True),
        ("[]", False),
        ("null", False),
        ("{", False),
        ("[" * 100_000, False),  # deep nesting is refused, not a crash
        (msgpack.packb({"type": "x"}), True),
        (msgpack.packb("x"), False),
        (b"", False),
        (b"\x81", False),  # truncated map
    ],
)
def test_decode_message(payload: str | bytes, ok: bool) -> None:
    if ok:
        assert decode_message(payload) == {"type": "x"}
    else:
        with pytest.raises(BadFrame) as bad:
            decode_message(payload)
        assert bad.value.code == 1007 and bad.value.to_message()["type"] == "error"


@pytest.mark.parametrize(
    ("data", "end"),
    [(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", 27), (b"GET / HTTP/1.1\r\nHost: x\r\n", -1), (b"", -1)],
)
def test_head_end(data: bytes, end: int) -> None:
    assert head_end(data) == end


def test_parse_head() -> None:
    head = parse_head(
        b"GET /a%20b/c%2Fd?format=msgpack&since=3 HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nX-Many: 1\r\nx-many: 2\r\n\r\n"
    )
    assert head is not None
    assert head.path == "/a b/c/d" and head.raw_path == "/a%20b/c%2Fd"
    assert head.query == {"format": "msgpack", "since": "3"}
    assert head.headers["x-many"] == "1, 2"
    assert head.wants_websocket
    assert not parse_head(b"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n").wants_websocket  # type: ignore[union-attr]
    assert parse_head(b"PRI * HTTP/2.0\r\n\r\n") is None
    assert parse_head(b"GET / HTTP/1.1\r\nbad header\r\n\r\n") is None


def test_json_response() -> None:
    data = json_response(404, {"error": "not_found", "message": "m"})
    head, body = data.split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n") and b"content-length: 35" in head
    assert body == b'{"error":"not_found","message":"m"}'
    assert b"connection: close" in head


def test_routes_match_one_segment_per_param() -> None:
    async def handler(socket: object, services: object, a: str, b: str) -> None: ...

    realtime_route("/t/{a}/x/{b}")(handler)
    try:
        found = match_route("/t/one%2Ftwo/x/3")
        assert found is not None and found[1] == {"a": "one/two", "b": "3"}
        assert found[0].kind == "t"
        assert match_route("/t/one/two/x/3") is None
        assert match_route("/t/a/x/b/extra") is None
        with pytest.raises(ValueError):
            realtime_route("/t/{a}/x/{b}")(lambda *a: None)  # type: ignore[arg-type,return-value]
    finally:
        unregister_route("/t/{a}/x/{b}")


@pytest.mark.parametrize(
    ("offered", "query", "expected"),
    [
        ([], {}, ("json", None)),
        (["ensemble.msgpack"], {}, ("msgpack", "ensemble.msgpack")),
        (["ensemble.json", "ensemble.msgpack"], {"format": "msgpack"}, ("json", "ensemble.json")),
        (["chat"], {"format": "msgpack"}, ("msgpack", None)),
        ([], {"format": "yaml"}, (None, None)),
    ],
)
def test_choose_format(offered: list[str], query: dict[str, str], expected: tuple[object, object]) -> None:
    assert choose_format(offered, query) == expected
