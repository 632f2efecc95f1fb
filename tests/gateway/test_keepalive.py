"""A keep-alive connection survives an answer given before the body was read.

Regression test for the wedge described in ``gateway/_asgi.py``: the body
arrives after the app has answered (401 here), then the client sends its
next request on the same connection and must get an answer.
"""

from __future__ import annotations

import pytest
import trio

from tests.gateway.conftest import Harness


async def _read_response(stream: trio.SocketStream, marker: bytes) -> bytes:
    out = b""
    while marker not in out:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.parametrize("size", [20, 2_000_000], ids=["small-body", "large-body"])
async def test_next_request_is_answered_after_an_early_401(h: Harness, size: int) -> None:
    host, port = h.srv.url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        body = b'{"name": "' + b"x" * (size - 12) + b'"}'
        head = (
            "POST /api/v1/clients HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        await stream.send_all(head.encode())
        await trio.sleep(0.05)  # the app answers 401 before the body is in
        await stream.send_all(body)
        with trio.fail_after(10):
            first = await _read_response(stream, b'"}')
        assert first.startswith(b"HTTP/1.1 401")
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        with trio.fail_after(10):
            second = await _read_response(stream, b'{"status":"ok"}')
        assert second.startswith(b"HTTP/1.1 200"), second[:100]
