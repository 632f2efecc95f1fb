"""The machine's floor for one delivery: a non-blocking TCP loopback send().

    python bench/_fanout_floor.py [CPU]

1,000 connected pairs on 127.0.0.1; the server side sends one 82-byte
WebSocket text frame to each, 20 rounds, nobody reading meanwhile (the
kernel buffers absorb it).  Prints the mean µs per send: no Python server
can deliver a frame for less on this machine, so it calibrates the other
figures (the issue's numbers were measured when this was much lower).
"""

from __future__ import annotations

import os
import socket
import sys
import time


def main() -> None:
    if len(sys.argv) > 1:
        try:
            os.sched_setaffinity(0, {int(sys.argv[1])})
        except OSError:
            pass
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    clients, servers = [], []
    for _ in range(1000):
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        server.setblocking(False)
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setblocking(False)
        clients.append(client)
        servers.append(server)
    frame = b"\x81\x50" + b"x" * 80
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(20):
            for server in servers:
                server.send(frame)
        best = min(best, (time.perf_counter() - started) / (20 * len(servers)))
        for client in clients:  # drain between rounds, untimed
            try:
                while client.recv(1 << 16):
                    pass
            except BlockingIOError:
                pass
    print(f"{best * 1e6:.2f}")


if __name__ == "__main__":
    main()
