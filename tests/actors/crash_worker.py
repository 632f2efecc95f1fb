"""Run by test_crash.py in a subprocess: senders that print every acknowledged offset."""

from __future__ import annotations

import sys

import trio

from ensemble.actors import Address, open_actor_system
from ensemble.actors.examples import EchoRoom
from ensemble.bridge import open_bridge
from ensemble.persistence.database import open_database


async def main(dsn: str, key: str, senders: int) -> None:
    async with open_bridge() as bridge, open_database(bridge, dsn, min_size=1, max_size=4) as db:
        async with open_actor_system(db, [EchoRoom()], snapshot_every=25) as system:
            address = Address("room", key)

            async def sender(n: int) -> None:
                i = 0
                while True:
                    i += 1
                    reply = await system.ask(address, {"type": "say", "text": f"{n}-{i}", "client_id": f"{n}-{i}"})
                    # The client "saw" this effect: it must survive the crash.
                    print(reply["offset"], flush=True)

            async with trio.open_nursery() as nursery:
                for n in range(senders):
                    nursery.start_soon(sender, n)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
