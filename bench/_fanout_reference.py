"""The reference room server for bench/fanout.py: plain ``websockets`` (asyncio).

The same wire protocol as Ensemble's bench route (``/bench/rooms/{key}/ws``),
without durability: on connect a ``room_state`` frame; ``say`` broadcasts
``said`` with a new offset; ``typing`` broadcasts ``typing``; ``echo`` is
answered.  Broadcasts use ``websockets.broadcast`` (encode once, write to
every connection synchronously), the library's fastest fan-out.

    python bench/_fanout_reference.py PORT_FILE [CPU]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

rooms: dict[str, set[ServerConnection]] = {}
offsets: dict[str, int] = {}
seen: dict[str, dict[str, int]] = {}


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "/"
    key = path.split("?")[0].rstrip("/").split("/")[-2] if path.count("/") >= 3 else "default"
    members = rooms.setdefault(key, set())
    await ws.send(dumps({"type": "room_state", "count": 0, "messages": offsets.get(key, 0), "offset": offsets.get(key, 0), "epoch": "ref"}))
    members.add(ws)
    try:
        async for raw in ws:
            try:
                message = json.loads(raw)
            except ValueError:
                await ws.send(dumps({"type": "error", "error": "invalid_frame", "message": "not JSON"}))
                continue
            kind = message.get("type")
            if kind == "say":
                client_id = message.get("client_id")
                room_seen = seen.setdefault(key, {})
                if client_id is not None and client_id in room_seen:
                    continue
                offset = offsets[key] = offsets.get(key, 0) + 1
                if client_id is not None:
                    room_seen[client_id] = offset
                    if len(room_seen) > 1000:
                        room_seen.pop(next(iter(room_seen)))
                broadcast(members, dumps({"type": "said", "text": message.get("text"), "client_id": client_id,
                                          "at": offset, "offset": offset, "epoch": "ref"}))
            elif kind == "typing":
                broadcast(members, dumps({"type": "typing", "who": message.get("who"), "offset": offsets.get(key, 0), "epoch": "ref"}))
            elif kind == "echo":
                await ws.send(dumps({**message, "type": "echo_reply"}))
    except ConnectionClosed:
        pass  # a client that vanished: not worth a logged traceback
    finally:
        members.discard(ws)


async def main(port_file: str) -> None:
    # Same conditions as Ensemble: no compression, pings on, no size games.
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=64 << 10, ping_interval=20, ping_timeout=60, backlog=4096) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with open(port_file, "w") as f:
            json.dump({"url": f"http://127.0.0.1:{port}", "port": port}, f)
        await asyncio.Future()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        try:
            os.sched_setaffinity(0, {int(sys.argv[2])})
        except OSError:
            pass
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
