"""Load generator worker for bench/fanout.py (one process; several run side by side).

A raw-socket WebSocket client on ``select.epoll``, no framework: the clients
must cost less per delivery than the servers they measure.  Frames from the
server are unmasked, so counting them is a walk over headers; the latency
stamp (``monotonic_ns`` at send, carried in ``who``/``text``) is found with
one regex search per frame.  Client frames use the all-zero mask key (valid
per RFC 6455; the server cannot tell), so sending costs no XOR.

Protocol with the orchestrator: config as JSON in argv[1]; the worker
connects its clients and prints ``{"ready": ...}``; it then reads one line
``{"go": <start monotonic ns>}`` from stdin, runs, and prints its results as
one JSON line.  CLOCK_MONOTONIC is system-wide, so stamps compare across
processes.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import select
import socket
import sys
import time
from typing import Any

STAMP = re.compile(rb'"(?:who|text)":"?(\d+)')
BUCKET_NS = 10_000  # latency histogram resolution: 10 µs
RECV = 1 << 18

CONNECTING, HANDSHAKE, WAIT_STATE, READY, CLOSED = range(5)


def frame(payload: bytes) -> bytes:
    """A masked client text frame with the zero mask key."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, 0x80 | n)) + b"\0\0\0\0" + payload
    return bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big") + b"\0\0\0\0" + payload


PONG_EMPTY = bytes((0x8A, 0x80)) + b"\0\0\0\0"


class Conn:
    __slots__ = ("sock", "fd", "state", "buf", "role", "sent", "outstanding", "errors", "next_at", "name", "seq",
                 "close_code", "attempts")

    def __init__(self, role: str, name: str) -> None:
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = CLOSED
        self.buf = b""
        self.role = role  # "receiver", "sender" (chat: also a receiver), "source" (extra connection)
        self.sent = 0
        self.outstanding = 0
        self.errors = 0
        self.next_at = 0
        self.name = name
        self.seq = 0
        self.close_code: int | None = None
        self.attempts = 0


class Worker:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.ep = select.epoll()
        self.by_fd: dict[int, Conn] = {}
        self.conns: list[Conn] = []
        self.hist: dict[int, int] = {}
        self.delivered = 0  # frames counted at receivers (not the extra source connection)
        self.delivered_in_window = 0
        self.count_from = 0
        self.count_until = 1 << 62
        self.window_end = 1 << 62
        self.latency = cfg["mode"] == "latency"
        self.close_codes: dict[str, int] = {}
        self.view = memoryview(bytearray(RECV))
        self.handshake = (
            f"GET {cfg['path']} HTTP/1.1\r\nHost: {cfg['host']}:{cfg['port']}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
        )

    # -- connecting -------------------------------------------------------------------
    def open(self, conn: Conn) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.attempts += 1
        err = sock.connect_ex((self.cfg["host"], self.cfg["port"]))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            conn.state = CLOSED
            return
        conn.sock, conn.fd, conn.state, conn.buf = sock, sock.fileno(), CONNECTING, b""
        self.by_fd[conn.fd] = conn
        self.ep.register(conn.fd, select.EPOLLOUT | select.EPOLLIN)

    def connect_all(self, conns: list[Conn], in_flight: int = 64, timeout_s: float = 60.0) -> None:
        """Open every connection, at most ``in_flight`` handshakes at a time (attaching
        thousands at once would overflow the room actor's mailbox); retry refusals."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            active = sum(1 for c in conns if c.state in (CONNECTING, HANDSHAKE, WAIT_STATE))
            waiting = [c for c in conns if c.state == CLOSED and c.attempts < 5]
            if not waiting and active == 0:
                break
            for conn in waiting[: max(0, in_flight - active)]:
                self.open(conn)
            self.poll(0.02)

    # -- the loop -------------------------------------------------------------------------
    def poll(self, timeout: float) -> None:
        for fd, mask in self.ep.poll(timeout, 4096):
            conn = self.by_fd.get(fd)
            if conn is None:
                continue
            if conn.state == CONNECTING:
                if mask & (select.EPOLLERR | select.EPOLLHUP):
                    self.drop(conn, None)
                    continue
                key = base64.b64encode(os.urandom(16)).decode()
                conn.sock.send((self.handshake + key + "\r\n\r\n").encode())  # type: ignore[union-attr]
                conn.state = HANDSHAKE
                self.ep.modify(fd, select.EPOLLIN)
                continue
            if mask & select.EPOLLIN or mask & (select.EPOLLERR | select.EPOLLHUP):
                self.readable(conn)

    def readable(self, conn: Conn) -> None:
        sock = conn.sock
        assert sock is not None
        try:
            # Into one preallocated buffer: recv(256 KiB) would malloc (mmap) a
            # fresh 256 KiB object per call and shrink it.
            got = sock.recv_into(self.view)
        except BlockingIOError:
            return
        except OSError:
            got = 0
        if not got:
            self.drop(conn, None)
            return
        data = self.view[:got].tobytes()
        buf = conn.buf + data if conn.buf else data
        if conn.state == HANDSHAKE:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                conn.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.drop(conn, None)
                return
            buf = buf[end + 4 :]
            conn.state = WAIT_STATE
        now = time.monotonic_ns()
        pos, n = 0, len(buf)
        latency, hist, receiver = self.latency, self.hist, conn.role != "source"
        counted = 0
        while n - pos >= 2:
            length = buf[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            opcode = buf[pos] & 0x0F
            pos = end
            if opcode == 1 or opcode == 2:
                if conn.state == WAIT_STATE:
                    conn.state = READY  # the first frame is the room state
                    continue
                if buf.startswith(b'{"type":"error"', start):
                    conn.errors += 1
                    conn.outstanding -= 1
                    continue
                if conn.role == "source":
                    conn.outstanding -= 1
                    continue
                counted += 1
                if latency:
                    found = STAMP.search(buf, start, end)
                    if found is not None:
                        bucket = (now - int(found[1])) // BUCKET_NS
                        hist[bucket] = hist.get(bucket, 0) + 1
            elif opcode == 8:
                code = int.from_bytes(buf[start : start + 2], "big") if length >= 2 else 1005
                self.drop(conn, code)
                return
            elif opcode == 9:
                try:
                    sock.send(bytes((0x8A, 0x80 | length)) + b"\0\0\0\0" + buf[start:end])
                except OSError:
                    pass
        conn.buf = buf[pos:] if pos < n else b""
        if counted and receiver and self.count_from <= now:
            self.delivered += counted
            if now <= self.window_end:
                self.delivered_in_window += counted

    def drop(self, conn: Conn, code: int | None) -> None:
        if conn.state == READY:
            key = str(code)
            self.close_codes[key] = self.close_codes.get(key, 0) + 1
        conn.close_code = code
        conn.state = CLOSED
        if conn.sock is not None:
            try:
                self.ep.unregister(conn.fd)
            except OSError:
                pass
            self.by_fd.pop(conn.fd, None)
            conn.sock.close()
            conn.sock = None

    def send(self, conn: Conn, payload: bytes) -> None:
        if conn.state != READY or conn.sock is None:
            return
        try:
            conn.sock.send(frame(payload))  # small frames: the kernel takes them whole
        except OSError:
            self.drop(conn, None)
            return
        conn.sent += 1
        conn.outstanding += 1

    # -- the scenario ------------------------------------------------------------------------
    def run(self, start_ns: int) -> dict[str, Any]:
        cfg = self.cfg
        duration_ns = int(cfg["duration"] * 1e9)
        drain_ns = int(cfg["drain"] * 1e9)
        stop_sending = start_ns + duration_ns
        finish = stop_sending + drain_ns
        self.count_from = start_ns
        self.window_end = stop_sending
        senders = [c for c in self.conns if c.role in ("sender", "source")]
        kind = cfg.get("kind", "typing")
        window = cfg.get("window")
        rate = cfg.get("rate")
        for i, conn in enumerate(senders):
            # Spread the senders over one period so they do not send in lockstep.
            conn.next_at = start_ns + (int(1e9 / rate * i / max(1, len(senders))) if rate else 0)
        cpu0 = time.process_time()
        while True:
            now = time.monotonic_ns()
            if now >= finish:
                break
            next_wake = finish
            if now < stop_sending:
                for conn in senders:
                    if window is not None:
                        while conn.outstanding < window and conn.state == READY:
                            self.send_stamped(conn, kind)
                    else:
                        while conn.next_at <= now and conn.state == READY:
                            self.send_stamped(conn, kind)
                            conn.next_at += int(1e9 / rate)
                        next_wake = min(next_wake, conn.next_at)
            timeout = max(0.0, min(next_wake - now, 50_000_000) / 1e9) if window is None else 0.005
            self.poll(timeout)
        cpu = time.process_time() - cpu0
        return {
            "delivered": self.delivered,
            "delivered_in_window": self.delivered_in_window,
            "hist": self.hist,
            "sent": sum(c.sent for c in senders),
            "errors": sum(c.errors for c in senders),
            "receivers": sum(1 for c in self.conns if c.role != "source"),
            "closed": self.close_codes,
            "cpu_s": cpu,
        }

    def send_stamped(self, conn: Conn, kind: str) -> None:
        stamp = time.monotonic_ns()
        if kind == "say":
            conn.seq += 1
            payload = f'{{"type":"say","text":"{stamp}","client_id":"{conn.name}-{conn.seq}"}}'
        else:
            payload = f'{{"type":"typing","who":{stamp}}}'
        self.send(conn, payload.encode())


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if cfg.get("cpu") is not None:
        try:
            os.sched_setaffinity(0, {cfg["cpu"]})
        except OSError:
            pass
    worker = Worker(cfg)
    tag = f"w{cfg.get('worker', 0)}-{os.getpid()}"  # client ids must differ across workers (the room dedups them)
    worker.conns = [Conn("receiver", f"{tag}-r{i}") for i in range(cfg["receivers"])]
    for i in range(cfg.get("senders", 0)):
        worker.conns[i].role = "sender"
    worker.connect_all(worker.conns)
    if cfg.get("source"):
        source = Conn("source", "source")
        worker.conns.append(source)
        worker.connect_all([source])
    ready = sum(1 for c in worker.conns if c.state == READY)
    print(json.dumps({"ready": ready, "wanted": len(worker.conns)}), flush=True)
    line = sys.stdin.readline()
    if not line:
        return
    go = json.loads(line)
    result = worker.run(int(go["go"]))
    result["ready"] = ready
    print(json.dumps(result), flush=True)
    sys.stdin.readline()  # hold the connections until the orchestrator is done with them
    close = bytes((0x88, 0x82)) + b"\0\0\0\0" + (1000).to_bytes(2, "big")
    for conn in worker.conns:  # leave politely: both servers see a close frame, not a reset
        if conn.sock is not None:
            try:
                conn.sock.send(close)
            except OSError:
                pass


if __name__ == "__main__":
    main()
