"""Where a durable chat message's latency goes, without sockets.

    .venv/bin/python bench/_commit_probe.py [--seconds 10] [--cpu 0] [--senders 10] [--rate 20]

One EchoRoom actor, 50 in-memory subscribers, ``senders`` tasks each telling
``say`` at ``rate``/s (the chat scenario of bench/fanout.py minus the
sockets), the whole process pinned to one core like the bench server.
Prints percentiles of tell → delivery and of each stage of the commit path:
queued (turn submitted → committer picks the batch), to_loop (committer →
asyncio task running), sql (the store function), back (asyncio done → trio
committer resumes; with a pooled connection this includes the pool's reset
round trip), plus the batch sizes, commits slower than 3 ms and GC pauses.
``--legacy`` runs the commit path as it was before the one-statement change
(a pooled connection per batch, BEGIN/INSERT/COMMIT) for an A/B on the same
machine; ``--pg-priority N`` renices the probe database's backends.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ensemble.actors import Address, OutboundFrame, Subscriber, open_actor_system  # noqa: E402
from ensemble.actors.examples import EchoRoom  # noqa: E402
from ensemble.bridge import open_bridge  # noqa: E402
from ensemble.persistence import actor_store  # noqa: E402
from ensemble.persistence.database import open_database  # noqa: E402
from ensemble.testing import ScratchPostgres  # noqa: E402

STAGES: dict[str, list[float]] = {"queued": [], "to_loop": [], "sql": [], "back": [], "batch": []}
SLOW: list[tuple[float, float, int]] = []  # (wall time, sql ms, writes) of commits slower than 3 ms
GC_PAUSES: list[tuple[float, float, int]] = []  # (wall time, ms, generation) of pauses over 1 ms
LOG_SLOW = False
PG_PRIORITY = 0
_gc_started = [0.0]


def _gc_watch(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    took = (time.perf_counter() - _gc_started[0]) * 1000
    if took > 1:
        GC_PAUSES.append((time.time(), round(took, 2), info.get("generation", -1)))


class Probe(Subscriber):
    def __init__(self, latencies: list[float] | None) -> None:
        super().__init__(capacity=10_000)
        self.latencies = latencies

    def deliver(self, frame: OutboundFrame, *, catch_up: bool = False) -> None:
        if self.latencies is not None and frame.message.get("type") == "said":
            stamp = int(frame.message["text"])
            self.latencies.append((time.perf_counter_ns() - stamp) / 1e6)


def pct(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _legacy_commit_writes(conn: Any, writes: list[Any]) -> None:
    """The commit before this change, for the events-only writes of the probe: BEGIN, INSERT, COMMIT."""
    rows = [(w.kind, w.key, o, w.epoch, t, p) for w in writes for o, t, p in w.events]
    async with conn.transaction():
        if rows:
            await conn.execute(
                'INSERT INTO actor_events (kind, key, "offset", epoch, type, payload) '
                "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bytea[])",
                *[list(column) for column in zip(*rows)],
            )


def use_legacy_path() -> None:
    """Pool acquire + reset per batch and a three-round-trip transaction (the code before)."""
    from ensemble.actors import _committer

    original_init = _committer.GroupCommitter.__init__

    def init(self: Any, db: Any, **kw: Any) -> None:
        original_init(self, db, **kw)
        self._conn = db  # Database.run: a pooled connection per batch

    _committer.GroupCommitter.__init__ = init  # type: ignore[method-assign]
    _committer.commit_writes = _legacy_commit_writes  # type: ignore[attr-defined]


def instrument() -> None:
    """Timestamps around the committer's stages (monkeypatched; probe only)."""
    from ensemble.actors import _committer

    original_commit = _committer.GroupCommitter._commit
    original_store = _committer.commit_writes  # type: ignore[attr-defined]

    async def timed_store(conn: Any, writes: list[Any]) -> None:
        if LOG_SLOW and id(conn) not in _logging:
            # Postgres logs statements slower than 3 ms (its own view of the duration).
            await conn.execute("SET log_min_duration_statement = 3")
            _logging.add(id(conn))
        t = time.perf_counter()
        STAGES["to_loop"].append((t - _state["handed"]) * 1000)
        await original_store(conn, writes)
        _state["sql_done"] = time.perf_counter()
        took = (_state["sql_done"] - t) * 1000
        STAGES["sql"].append(took)
        if took > 3:
            SLOW.append((time.time(), round(took, 2), len(writes)))

    async def timed_commit(self: Any, batch: list[Any]) -> Any:
        now = time.perf_counter()
        for p in batch:
            STAGES["queued"].append((now - p.submitted_at) * 1000)
        STAGES["batch"].append(len(batch))
        _state["handed"] = now
        outcome = await original_commit(self, batch)
        STAGES["back"].append((time.perf_counter() - _state["sql_done"]) * 1000)
        return outcome

    _state: dict[str, float] = {"handed": 0.0, "sql_done": 0.0}
    _logging: set[int] = set()
    _committer.commit_writes = timed_store  # type: ignore[attr-defined]
    _committer.GroupCommitter._commit = timed_commit  # type: ignore[method-assign]


async def run(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    latencies: list[float] = []
    async with open_bridge() as bridge, open_database(bridge, dsn, min_size=4, max_size=8) as db:
        async with open_actor_system(db, [EchoRoom()]) as system:
            room = Address("room", uuid.uuid4().hex)
            subs = [Probe(latencies if i == 0 else None) for i in range(50)]
            for sub in subs:
                await system.attach(room, sub)
            gc.collect()
            gc.freeze()
            if PG_PRIORITY:
                for pid in await db.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"):
                    os.setpriority(os.PRIO_PROCESS, pid[0], -PG_PRIORITY)
            # warm up
            for i in range(50):
                await system.ask(room, {"type": "say", "text": str(time.perf_counter_ns()), "client_id": f"w{i}"})
            latencies.clear()
            for v in STAGES.values():
                v.clear()
            deadline = trio.current_time() + args.seconds
            period = 1.0 / args.rate

            async def sender(n: int) -> None:
                await trio.sleep(period * n / args.senders)
                seq = 0
                next_at = trio.current_time()
                while trio.current_time() < deadline:
                    seq += 1
                    system.tell_nowait(room, {"type": "say", "text": str(time.perf_counter_ns()),
                                              "client_id": f"s{n}-{seq}"})
                    next_at += period
                    await trio.sleep_until(next_at)

            async with trio.open_nursery() as nursery:
                for n in range(args.senders):
                    nursery.start_soon(sender, n)
            await trio.sleep(0.5)
    out: dict[str, Any] = {"messages": len(latencies)}
    for name, samples in [("tell_to_delivery", latencies), *STAGES.items()]:
        out[name] = {"p50": round(pct(samples, 0.5), 3), "p99": round(pct(samples, 0.99), 3),
                     "max": round(max(samples) if samples else float("nan"), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--no-instrument", action="store_true")
    parser.add_argument("--legacy", action="store_true",
                        help="the commit path before this change (pooled connection, BEGIN/INSERT/COMMIT)")
    parser.add_argument("--pg-priority", type=int, default=0, help="renice this database's Postgres backends to -N")
    parser.add_argument("--log-slow", action="store_true", help="Postgres logs this connection's statements > 3 ms")
    args = parser.parse_args()
    global LOG_SLOW, PG_PRIORITY
    LOG_SLOW = args.log_slow
    PG_PRIORITY = args.pg_priority
    gc.callbacks.append(_gc_watch)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    if args.legacy:
        use_legacy_path()
    if not args.no_instrument:
        instrument()
    pg = ScratchPostgres()
    try:
        dsn = pg.create_migrated_database("ens_probe")
        result = trio.run(run, args, dsn)
    finally:
        pg.close()
    for name, figures in result.items():
        print(f"{name:18} {figures}")
    stamp = lambda t: time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}"  # noqa: E731
    print("slow commits (UTC, ms, writes):", [(stamp(t), ms, n) for t, ms, n in SLOW])
    print("gc pauses > 1 ms (UTC, ms, gen):", [(stamp(t), ms, g) for t, ms, g in GC_PAUSES])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
