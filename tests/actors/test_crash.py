"""SIGKILL while clients send: every acknowledged event survives, the log has no gaps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import trio

from ensemble.actors import Address

WORKER = Path(__file__).with_name("crash_worker.py")


@pytest.mark.slow
async def test_sigkill_loses_nothing_acknowledged(database_url: str, open_system, db) -> None:  # type: ignore[no-untyped-def]
    key = uuid.uuid4().hex
    acknowledged: set[int] = set()
    for round_ in range(2):  # crash twice: the second run starts from the first's log
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(WORKER), database_url, key, "8"],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        buffer = b""
        with trio.fail_after(60):
            while len(acknowledged) < 300 * (round_ + 1):
                chunk = await proc.stdout.receive_some(65536)  # type: ignore[union-attr]
                assert chunk, "worker exited early"
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                acknowledged.update(int(line) for line in lines if line.strip())
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    offsets = [r[0] for r in await db.fetch(
        'SELECT "offset" FROM actor_events WHERE kind = \'room\' AND key = $1 ORDER BY "offset"', key
    )]
    # Every offset a client was told about is durable...
    assert acknowledged <= set(offsets)
    # ...and the log is gap-free from 1.
    assert offsets == list(range(1, len(offsets) + 1))
    # Nothing half-applied: a fresh activation folds the whole log (via the
    # latest snapshot) to exactly one message per event.
    async with open_system() as system:
        state = await system.ask(Address("room", key), {"type": "get"})
    assert state["messages"] == len(offsets)
