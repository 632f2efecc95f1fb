"""Ensemble as bench/fanout.py runs it: ``ensemble serve``, pinned to one core.

    python bench/_fanout_server.py PORT_FILE CPU [--no-gc-tuning]

Configuration comes from the environment the orchestrator sets
(ENSEMBLE_DATABASE_URL, ENSEMBLE_DATA_DIR, ENSEMBLE_BENCH_ROUTES=1, ...).
The affinity is set before anything starts a thread, so the asyncio bridge
thread shares the core with the trio thread.  ``--no-gc-tuning`` skips
``server._tune_gc`` to measure what it buys.
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
    from ensemble.cli import main as cli_main

    return cli_main(["serve", "--port-file", port_file])


if __name__ == "__main__":
    sys.exit(main())
