"""Store-and-forward: the agent's durable outbox and command memory (SQLite).

Theory of operation
-------------------
Every event the hub reports (printer status, transfer progress, command
acks, printer connect/disconnect) is numbered with the next ``seq`` of the
hub's stream and written here *before* it is sent.  It stays until the cloud
acknowledges it (``seq_ack`` after the event is durable there, or
``hub_welcome.last_seq`` at connect).  While the hub is disconnected the
outbox simply grows; on reconnect the sender replays it in ``seq`` order, and
the cloud drops whatever it already has (``seq <= last_seq``).

The outbox is bounded (``max_events``).  When full, the *oldest status*
goes first (a newer status of the same printer supersedes it), then the
oldest transfer progress; command acks and printer connect/disconnect events
are never dropped: losing an ack would make the cloud re-send a command that
already ran.

The stream id and the next ``seq`` live in the same database, so they can
never disagree with the events: a hub whose state directory is wiped starts a
new stream and the cloud restarts its de-duplication.

Command memory: a command is recorded as *started* before it runs and as
*done* with its ack after; a restart finds started-but-not-done commands and
answers them with a failure instead of running them again (at most once).

SQLite calls run synchronously on the trio thread: each is a single small
statement in WAL mode (tens of microseconds), far cheaper than a thread hop.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import trio

from ensemble.hubs.protocol import CommandAck, Message, from_wire, to_wire

__all__ = ["Outbox", "DROP_ORDER"]

# Message types in the order they are sacrificed when the outbox is full.
DROP_ORDER = ("printer_status", "file_progress")
_COMMAND_MEMORY = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, frame BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_type_idx ON events (type, seq);
CREATE TABLE IF NOT EXISTS commands (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    ack BLOB
);
"""


class Outbox:
    def __init__(self, path: Path, *, max_events: int = 10_000) -> None:
        self.path = path
        self.max_events = max_events
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.stream_id = self._meta("stream_id") or self._new_stream()
        self.next_seq = int(self._meta("next_seq") or 0)
        self.dropped = 0
        self.changed = trio.Event()

    # -- meta --------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                         (key, value, value))

    def _new_stream(self) -> str:
        stream = uuid.uuid4().hex
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM events")
        self._set_meta("stream_id", stream)
        self._set_meta("next_seq", "0")
        self._db.execute("COMMIT")
        return stream

    # -- events ---------------------------------------------------------------------

    def add(self, make: Callable[[int], Message]) -> Message:
        """Number a new event with the next seq, store it, wake the sender."""
        seq = self.next_seq
        message = make(seq)
        frame = msgpack.packb(to_wire(message), use_bin_type=True)
        self._db.execute("BEGIN")
        self._db.execute("INSERT INTO events (seq, type, frame) VALUES (?, ?, ?)", (seq, message.type, frame))
        self._set_meta("next_seq", str(seq + 1))
        self._db.execute("COMMIT")
        self.next_seq = seq + 1
        self._enforce_bound()
        self._wake()
        return message

    def _enforce_bound(self) -> None:
        excess = len(self) - self.max_events
        for kind in DROP_ORDER:
            if excess <= 0:
                return
            cur = self._db.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE type = ? ORDER BY seq LIMIT ?)",
                (kind, excess),
            )
            self.dropped += cur.rowcount
            excess -= cur.rowcount

    def pending(self, after: int, limit: int = 256) -> list[dict[str, Any]]:
        """Stored events with ``seq > after``, oldest first, as wire dicts."""
        rows = self._db.execute(
            "SELECT frame FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ).fetchall()
        return [msgpack.unpackb(row[0], raw=False) for row in rows]

    def acknowledge(self, upto: int) -> None:
        """The cloud holds every event up to ``upto``: forget them."""
        self._db.execute("DELETE FROM events WHERE seq <= ?", (upto,))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    # -- command memory ---------------------------------------------------------------

    def command_started(self, command_id: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO commands (command_id, state) VALUES (?, 'started')", (command_id,))

    def command_done(self, ack: CommandAck) -> None:
        frame = msgpack.packb(to_wire(ack), use_bin_type=True)
        self._db.execute(
            "INSERT INTO commands (command_id, state, ack) VALUES (?, 'done', ?)"
            " ON CONFLICT (command_id) DO UPDATE SET state = 'done', ack = excluded.ack",
            (ack.command_id, frame),
        )
        self._db.execute(
            "DELETE FROM commands WHERE n <= (SELECT max(n) FROM commands) - ?", (_COMMAND_MEMORY,)
        )

    def remembered_commands(self) -> tuple[list[CommandAck], list[str]]:
        """(acks of finished commands oldest first, ids of commands interrupted by a restart)."""
        done: list[CommandAck] = []
        interrupted: list[str] = []
        for command_id, state, ack in self._db.execute("SELECT command_id, state, ack FROM commands ORDER BY n"):
            if state == "done" and ack is not None:
                message = from_wire(msgpack.unpackb(ack, raw=False))
                assert isinstance(message, CommandAck)
                done.append(message)
            else:
                interrupted.append(str(command_id))
        return done, interrupted

    def close(self) -> None:
        self._db.close()
