"""Unusable messages are answered, not fatal: the socket stays usable."""

from __future__ import annotations

import json

import msgpack
import pytest

from tests.realtime.conftest import next_json, open_ws, ws_url
from tests.realtime.rawws import RawClient, close_code
from tests.server import RunningServer, running_server


@pytest.mark.parametrize(
    ("payload", "error", "fragment"),
    [
        ("not json at all", "invalid_frame", "not valid JSON"),
        ("[1, 2, 3]", "invalid_frame", "JSON object"),
        ('"a string"', "invalid_frame", "JSON object"),
        (b"\xc1\xc1\xc1", "invalid_frame", "not valid msgpack"),  # 0xc1 is never used in msgpack
        (msgpack.packb([1, 2]), "invalid_frame", "msgpack map"),
        (msgpack.packb({"a": 1}) + b"\x01", "invalid_frame", "not valid msgpack"),  # trailing bytes
    ],
)
async def test_bad_frame_gets_an_error_and_the_socket_goes_on(
    server: RunningServer, payload: str | bytes, error: str, fragment: str
) -> None:
    async with open_ws(ws_url(server, "/test/echo/bad/ws")) as ws:
        await next_json(ws)
        await ws.send_message(payload)
        reply = await next_json(ws)
        assert reply["type"] == "error" and reply["error"] == error and fragment in reply["message"]
        await ws.send_message(json.dumps({"type": "after"}))
        assert await next_json(ws) == {"type": "echo", "got": {"type": "after"}}


async def test_oversized_message_is_refused_and_the_socket_goes_on(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_server(database_url, tmp_path, max_ws_message_bytes=1024) as srv:
        async with open_ws(ws_url(srv, "/test/echo/big/ws"), max_message_size=1 << 20) as ws:
            await next_json(ws)
            await ws.send_message(json.dumps({"type": "big", "data": "x" * 5000}))
            reply = await next_json(ws)
            assert reply == {"type": "error", "error": "payload_too_large", "message": "message larger than 1024 bytes"}
            await ws.send_message(msgpack.packb({"type": "big", "data": b"x" * 2000}))
            assert (await next_json(ws))["error"] == "payload_too_large"
            # Just under the limit is fine.
            await ws.send_message(json.dumps({"type": "ok", "data": "y" * 900}))
            assert (await next_json(ws))["got"]["type"] == "ok"


async def test_oversized_fragmented_message_is_dropped_as_it_arrives(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_server(database_url, tmp_path, max_ws_message_bytes=1024) as srv:
        client = await RawClient.connect(srv.url, "/test/echo/frag/ws")
        try:
            assert client.status == 101
            assert json.loads((await client.read_frame())[1])["type"] == "hello"
            await client.send_frame(0x1, b'{"type":"' + b"x" * 800, fin=False)
            await client.send_frame(0x0, b"y" * 800, fin=False)  # over the limit here
            await client.send_frame(0x0, b"z" * 800 + b'"}', fin=True)
            opcode, payload = await client.read_frame()
            assert opcode == 0x1 and json.loads(payload)["error"] == "payload_too_large"
            # Exactly one error for the whole message, then normal service.
            await client.send_frame(0x1, b'{"type":"after"}')
            assert json.loads((await client.read_frame())[1]) == {"type": "echo", "got": {"type": "after"}}
        finally:
            client.close()


async def test_protocol_violation_closes_1002(server: RunningServer) -> None:
    client = await RawClient.connect(server.url, "/test/echo/proto/ws")
    try:
        await client.read_frame()  # hello
        await client.send_frame(0x3, b"reserved opcode")
        opcode, payload = await client.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1002
    finally:
        client.close()


async def test_invalid_utf8_text_closes_1007(server: RunningServer) -> None:
    client = await RawClient.connect(server.url, "/test/echo/utf/ws")
    try:
        await client.read_frame()
        await client.send_frame(0x1, b'{"a":"\xff"}')
        opcode, payload = await client.read_frame()
        assert opcode == 0x8 and close_code(payload) == 1007
    finally:
        client.close()


async def test_frames_sent_right_behind_the_head_are_not_lost(server: RunningServer) -> None:
    import base64
    import os
    import struct

    import trio

    host, port = server.url.removeprefix("http://").split(":")
    sock = trio.socket.socket()
    await sock.connect((host, int(port)))
    mask = os.urandom(4)
    body = b'{"type":"eager"}'
    frame = struct.pack("!BB", 0x81, 0x80 | len(body)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET /test/echo/eager/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    await sock.send(head + frame)  # one segment: the frame arrives with the head
    client = RawClient(sock, b"", b"")
    data = b""
    while b"\r\n\r\n" not in data:
        data += await sock.recv(65536)
    client._buffer += data.split(b"\r\n\r\n", 1)[1]
    frames = [await client.read_frame(), await client.read_frame()]
    assert json.loads(frames[1][1]) == {"type": "echo", "got": {"type": "eager"}}
    client.close()
