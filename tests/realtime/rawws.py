"""A minimal WebSocket client on a raw trio socket, for what trio-websocket
hides: frames the server sends unasked (pings), a peer that never reads or
never answers, malformed frames."""

from __future__ import annotations

import base64
import os
import struct
from urllib.parse import urlsplit

import trio


class RawClient:
    def __init__(self, sock: trio.socket.SocketType, response_head: bytes, rest: bytes) -> None:
        self.sock = sock
        self.response_head = response_head
        self._buffer = bytearray(rest)

    @classmethod
    async def connect(
        cls, url: str, path: str, *, rcvbuf: int | None = None, headers: dict[str, str] | None = None
    ) -> "RawClient":
        parts = urlsplit(url)
        sock = trio.socket.socket()
        if rcvbuf is not None:
            # Before connect, so the window the server sees is small from the start.
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, rcvbuf)
        await sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        await sock.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return cls(sock, head, rest)

    @property
    def status(self) -> int:
        return int(self.response_head.split(b" ", 2)[1])

    async def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        mask = os.urandom(4)
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", first, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self.sock.send(header + mask + masked)

    async def send_text(self, text: str) -> None:
        await self.send_frame(0x1, text.encode())

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload); (-1, b"") on EOF."""
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            chunk = await self.sock.recv(65536)
            if not chunk:
                return -1, b""
            self._buffer += chunk

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            (n,), at = struct.unpack("!H", buf[2:4]), 4
        elif n == 127:
            if len(buf) < 10:
                return None
            (n,), at = struct.unpack("!Q", buf[2:10]), 10
        if len(buf) < at + n:
            return None
        payload = bytes(buf[at : at + n])
        del buf[: at + n]
        return opcode, payload

    async def close_frame(self, code: int = 1000) -> None:
        await self.send_frame(0x8, struct.pack("!H", code))

    def close(self) -> None:
        self.sock.close()


async def rejection(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    """Attempt an upgrade that the server refuses: (status, JSON body).

    (trio-websocket leaks its socket when a handshake is rejected, which
    pytest's unraisable-exception check turns into an error.)"""
    import json

    client = await RawClient.connect(url, path, headers=headers)
    body = bytes(client._buffer)
    while True:
        chunk = await client.sock.recv(65536)
        if not chunk:
            break
        body += chunk
    client.close()
    return client.status, json.loads(body)


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
