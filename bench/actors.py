"""Actor runtime benchmark: durable events/s, activation latency, idle memory.

Runs against the machine's Postgres at 127.0.0.1:5432 when reachable (else an
embedded one), in a scratch database dropped at the end.  Every counted event
is durable: a reply is released only after its event is committed.

    .venv/bin/python bench/actors.py [--seconds 5] [--actors 1000]

Prints a table, then one JSON line with single_actor_events_per_s,
many_actors_events_per_s, activation_p50_ms, activation_p99_ms,
idle_activation_kb (targets: >= 5000, >= 10000, p99 <= 5, <= 20).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ensemble.actors import ActorSystem, Address, open_actor_system  # noqa: E402
from ensemble.actors.examples import EchoRoom  # noqa: E402
from ensemble.bridge import open_bridge  # noqa: E402
from ensemble.persistence.database import open_database  # noqa: E402
from ensemble.testing import ScratchPostgres  # noqa: E402


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def drive(system: ActorSystem, addresses: list[Address], workers_per_actor: int, seconds: float) -> int:
    """Askers in a loop until the deadline; returns durable events acknowledged."""
    done = 0
    deadline = trio.current_time() + seconds

    async def worker(address: Address) -> None:
        nonlocal done
        while trio.current_time() < deadline:
            await system.ask(address, {"type": "increment"})
            done += 1

    async with trio.open_nursery() as nursery:
        for address in addresses:
            for _ in range(workers_per_actor):
                nursery.start_soon(worker, address)
    return done


async def single_actor(system: ActorSystem, seconds: float) -> float:
    address = Address("room", uuid.uuid4().hex)
    await system.ask(address, {"type": "increment"})
    started = time.perf_counter()
    # 256 concurrent clients of one hot actor; turns pipeline, commits batch.
    done = await drive(system, [address], 256, seconds)
    return done / (time.perf_counter() - started)


async def many_actors(system: ActorSystem, n: int, seconds: float) -> float:
    addresses = [Address("room", uuid.uuid4().hex) for _ in range(n)]
    async with trio.open_nursery() as nursery:
        for a in addresses:
            nursery.start_soon(system.ask, a, {"type": "increment"})
    started = time.perf_counter()
    done = await drive(system, addresses, 1, seconds)
    return done / (time.perf_counter() - started)


async def activation_latency(database_url: str, n: int) -> list[float]:
    """First-message latency of actors that load from a snapshot plus a short tail."""
    keys = [uuid.uuid4().hex for _ in range(n)]
    async with open_bridge() as bridge, open_database(bridge, database_url, min_size=4, max_size=8) as db:
        async with open_actor_system(db, [EchoRoom()], snapshot_every=10) as system:
            async with trio.open_nursery() as nursery:
                for key in keys:
                    async def fill(key: str = key) -> None:
                        for _ in range(13):  # snapshot at 10, tail of 3
                            await system.ask(Address("room", key), {"type": "say", "text": "x" * 40})
                    nursery.start_soon(fill)
        samples = []
        async with open_actor_system(db, [EchoRoom()]) as system:
            for key in keys:  # sequential: latency, not throughput
                t0 = time.perf_counter()
                await system.ask(Address("room", key), {"type": "get"})
                samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def idle_memory(database_url: str, n: int) -> tuple[float, list[float]]:
    """KB per idle activation, and KB still allocated after each of two rounds
    of n activations passivated.  The first round leaves container capacity
    behind (dicts and sets do not shrink); a second round that leaves no more
    than the first shows nothing per actor stays after passivation."""
    async with open_bridge() as bridge, open_database(bridge, database_url, min_size=4, max_size=8) as db:
        async with open_actor_system(db, [EchoRoom()], idle_timeout=2.0) as system:
            warm = Address("room", uuid.uuid4().hex)
            await system.ask(warm, {"type": "increment"})
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            per_actor = 0.0
            leftovers = []
            for _ in range(2):
                addresses = [Address("room", uuid.uuid4().hex) for _ in range(n)]
                async with trio.open_nursery() as nursery:
                    for a in addresses:
                        nursery.start_soon(lambda a=a: system.ask(a, {"type": "increment"}, timeout=15.0))
                await trio.sleep(0.5)
                gc.collect()
                if not leftovers:
                    per_actor = (tracemalloc.get_traced_memory()[0] - base) / n / 1024
                with trio.fail_after(30):
                    while any(system.is_active(a) for a in addresses):
                        await trio.sleep(0.2)
                del addresses
                await trio.sleep(2.5)  # answered asks leave the deadline heap within a second
                gc.collect()
                leftovers.append((tracemalloc.get_traced_memory()[0] - base) / 1024)
            tracemalloc.stop()
    return per_actor, leftovers


async def main(args: argparse.Namespace) -> dict[str, float]:
    pg = ScratchPostgres()
    try:
        dsn = await trio.to_thread.run_sync(pg.create_migrated_database, "ens_bench")
        async with open_bridge() as bridge, open_database(bridge, dsn, min_size=4, max_size=8) as db:
            async with open_actor_system(db, [EchoRoom()], mailbox_size=1024) as system:
                single = await single_actor(system, args.seconds)
                commit = system.committer.statistics()
                many = await many_actors(system, args.actors, args.seconds)
        samples = await activation_latency(dsn, args.activations)
        kb, leftovers = await idle_memory(dsn, args.idle)
    finally:
        await trio.to_thread.run_sync(pg.close)
    result = {
        "single_actor_events_per_s": round(single),
        "many_actors_events_per_s": round(many),
        "activation_p50_ms": round(pct(samples, 0.50), 3),
        "activation_p99_ms": round(pct(samples, 0.99), 3),
        "idle_activation_kb": round(kb, 2),
    }
    print(f"{'single hot actor (256 concurrent askers)':48} {result['single_actor_events_per_s']:>10} durable events/s   (target >= 5000)")
    print(f"{'  last group commit':48} {commit['last_batch_size']:>10} writes in {commit['last_commit_ms']} ms")
    print(f"{f'{args.actors} actors in parallel':48} {result['many_actors_events_per_s']:>10} durable events/s   (target >= 10000)")
    print(f"{'activation from snapshot, p50':48} {result['activation_p50_ms']:>10} ms")
    print(f"{'activation from snapshot, p99':48} {result['activation_p99_ms']:>10} ms   (target <= 5)")
    print(f"{'memory per idle activation':48} {result['idle_activation_kb']:>10} KB   (target <= 20)")
    print(f"{'memory left after passivating, round 1':48} {leftovers[0]:>10.1f} KB total (container capacity)")
    print(f"{'memory left after passivating, round 2':48} {leftovers[1]:>10.1f} KB total (flat = nothing kept per actor)")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--actors", type=int, default=1000, help="actors in the parallel run")
    parser.add_argument("--activations", type=int, default=500, help="actors activated for the latency run")
    parser.add_argument("--idle", type=int, default=2000, help="idle activations for the memory run")
    result = trio.run(main, parser.parse_args())
    print(json.dumps(result))
