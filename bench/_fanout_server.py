"""Ensemble as bench/fanout.py runs it: ``ensemble serve``, pinned to one core.

    python bench/_fanout_server.py PORT_FILE CPU [--no-gc-tuning]

Configuration comes from the environment the orchestrator sets
(ENSEMBLE_DATABASE_URL, ENSEMBLE_DATA_DIR, ENSEMBLE_BENCH_ROUTES=1, ...).
The affinity is set before anything starts a thread, so the asyncio bridge
thread shares the core with the trio thread.  ``--no-gc-tuning`` skips
``server._tune_gc`` to measure what it buys.

``ENSEMBLE_BENCH_SWEEP_STATS=<file>`` (diagnostics, off by default) times
every broadcast of a stamped frame inside the actor: how long after the
client's stamped send it started (dashboards: source socket → handler →
actor turn; chat: the same plus the durable commit) and how long the sweep
over the subscribers took; and every group commit.  Written as JSON at exit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    port_file, cpu = sys.argv[1], int(sys.argv[2])
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass
    if "--no-gc-tuning" in sys.argv[3:]:
        import ensemble.server

        ensemble.server._tune_gc = lambda: None  # type: ignore[attr-defined]
    stats_path = os.environ.get("ENSEMBLE_BENCH_SWEEP_STATS")
    if stats_path:
        _time_sweeps(stats_path)
    from ensemble.cli import main as cli_main

    return cli_main(["serve", "--port-file", port_file])


def _time_sweeps(path: str) -> None:
    import atexit
    import json
    import time

    from ensemble.actors import _committer
    from ensemble.actors._activation import Activation

    original = Activation._broadcast
    # (ms from the client's stamped send to the sweep's start, sweep ms, subscribers, frame type)
    sweeps: list[tuple[float, float, int, str]] = []
    commits: list[float] = []  # ms per group commit, committer to committer (bridge + SQL)
    queued: list[float] = []  # ms a write waited for the committer (submitted → its batch starts)

    def timed(self: Activation, frame: object) -> None:
        message = frame.message  # type: ignore[attr-defined]
        kind = message.get("type")
        stamp = message.get("who") if kind == "typing" else message.get("text") if kind == "said" else None
        start = time.monotonic_ns()
        original(self, frame)
        end = time.monotonic_ns()
        try:
            stamp = int(stamp)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        sweeps.append(((start - stamp) / 1e6, (end - start) / 1e6, len(self.subscribers), str(kind)))

    turns: list[float] = []  # ms from the client's stamped send to the start of its actor turn (chat)
    original_handle = Activation._handle

    async def timed_handle(self: Activation, msg: object) -> None:
        command = getattr(msg, "command", None)
        if command is not None and command.get("type") == "say":
            try:
                turns.append((time.monotonic_ns() - int(command["text"])) / 1e6)
            except (TypeError, ValueError):
                pass
        await original_handle(self, msg)  # type: ignore[arg-type]

    Activation._handle = timed_handle  # type: ignore[method-assign]
    original_commit = _committer.GroupCommitter._commit

    async def timed_commit(self: object, batch: list[object]) -> object:
        start = time.perf_counter()
        queued.extend((start - p.submitted_at) * 1000 for p in batch)  # type: ignore[attr-defined]
        outcome = await original_commit(self, batch)  # type: ignore[arg-type]
        commits.append((time.perf_counter() - start) * 1000)
        return outcome

    def dump() -> None:
        with open(path, "w") as f:
            json.dump({"sweeps": sweeps, "commits": commits, "turns": turns, "queued": queued}, f)

    Activation._broadcast = timed  # type: ignore[method-assign]
    _committer.GroupCommitter._commit = timed_commit  # type: ignore[method-assign]
    atexit.register(dump)


if __name__ == "__main__":
    sys.exit(main())
