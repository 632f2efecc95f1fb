"""De-duplication on both ends of the hub link (pure, bounded).

* ``CommandDeduplicator`` (hub side): the cloud re-sends a command until it
  sees its ``command_ack``; the hub must run it at most once.  ``begin`` says
  whether to run it; ``complete`` records the outcome so a re-sent command is
  answered with the same ack (re-tagged with a fresh ``seq`` by the agent)
  instead of being run again.  The memory is a FIFO of ``capacity`` command ids:
  it must be larger than the number of commands the cloud can still be
  retrying, which is its set of unacknowledged commands for this hub.

* ``SeqDeduplicator`` (cloud side, one per hub stream): the hub tags events
  with a per-stream ``seq`` (+1 per event) and replays its outbox after a
  reconnect, possibly interleaved with live events.  ``accept`` says whether an
  event is new.  ``floor`` is the low watermark: every ``seq <= floor`` has been
  accepted *or given up on*; it is what ``seq_ack`` / ``hub_welcome.last_seq``
  report, so the hub never drops an event the cloud has not seen.  Only seqs
  above ``highest - window`` are tracked, so memory is at most ``window`` seqs:
  a gap that falls to ``highest - window`` or below is given up (a later
  arrival in it is refused as old).  ``window`` must therefore exceed the
  agent's outbox capacity.
"""

import collections
import dataclasses
from collections.abc import Iterable

from ensemble.errors import ConfigError

from ._messages import CommandAck

__all__ = ["CommandDeduplicator", "SeqDeduplicator", "SeqStatistics"]


class CommandDeduplicator:
    def __init__(self, capacity: int = 1024, *, completed: Iterable[CommandAck] = ()) -> None:
        """``completed`` restores outcomes persisted across an agent restart."""
        if capacity < 1:
            raise ConfigError("capacity must be at least 1")
        self.capacity = capacity
        # command_id -> its ack, or None while the command is still running.
        self._seen: collections.OrderedDict[str, CommandAck | None] = collections.OrderedDict()
        for ack in completed:
            self._remember(ack.command_id, ack)

    def begin(self, command_id: str) -> bool:
        """True the first time ``command_id`` is seen: run it.  False: do not."""
        if command_id in self._seen:
            return False
        self._remember(command_id, None)
        return True

    def complete(self, ack: CommandAck) -> None:
        """Record the outcome of a command (after ``begin`` returned True)."""
        self._remember(ack.command_id, ack)

    def ack_for(self, command_id: str) -> CommandAck | None:
        """The recorded ack of a duplicate, or None (unknown or still running)."""
        return self._seen.get(command_id)

    def completed(self) -> tuple[CommandAck, ...]:
        """Outcomes to persist, oldest first (feed back as ``completed=``)."""
        return tuple(a for a in self._seen.values() if a is not None)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def _remember(self, command_id: str, ack: CommandAck | None) -> None:
        self._seen[command_id] = ack
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


@dataclasses.dataclass(frozen=True, slots=True)
class SeqStatistics:
    floor: int
    highest: int
    pending: int  # accepted seqs above the floor (waiting for a gap to fill)
    accepted: int
    duplicates: int


class SeqDeduplicator:
    def __init__(self, window: int = 8192, *, floor: int = -1) -> None:
        """``floor`` restores the durable watermark: seqs up to it count as seen."""
        if window < 1:
            raise ConfigError("window must be at least 1")
        self.window = window
        self._floor = floor
        self._highest = floor
        self._above: set[int] = set()  # accepted seqs > floor
        self._accepted = 0
        self._duplicates = 0

    @property
    def floor(self) -> int:
        return self._floor

    @property
    def highest(self) -> int:
        return self._highest

    def accept(self, seq: int) -> bool:
        """True if ``seq`` is new (process it); False for a duplicate or one too old."""
        if seq <= self._floor or seq in self._above:
            self._duplicates += 1
            return False
        self._accepted += 1
        self._above.add(seq)
        if seq > self._highest:
            self._highest = seq
        floor = self._floor
        oldest_kept = self._highest - self.window
        if floor < oldest_kept:
            # Give up on gaps more than `window` behind.  Cost is the smaller of
            # the distance jumped and the set size, so neither a huge seq jump
            # nor a steady trickle of gaps costs O(window) per event.
            if oldest_kept - floor <= len(self._above):
                for s in range(floor + 1, oldest_kept + 1):
                    self._above.discard(s)
            else:
                self._above = {s for s in self._above if s > oldest_kept}
            floor = oldest_kept
        above = self._above
        while floor + 1 in above:
            floor += 1
            above.discard(floor)
        self._floor = floor
        return True

    def statistics(self) -> SeqStatistics:
        return SeqStatistics(
            floor=self._floor,
            highest=self._highest,
            pending=len(self._above),
            accepted=self._accepted,
            duplicates=self._duplicates,
        )
