"""Command de-duplication (hub side) and seq de-duplication (cloud side)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble.errors import ConfigError
from ensemble.hubs.protocol import CommandAck, CommandDeduplicator, SeqDeduplicator


def ack(command_id: str, success: bool = True) -> CommandAck:
    return CommandAck(seq=1, command_id=command_id, success=success, ts=1, error=None if success else "busy")


# --- CommandDeduplicator ----------------------------------------------------------


def test_a_command_runs_once() -> None:
    d = CommandDeduplicator()
    assert d.begin("c1") is True
    assert d.begin("c1") is False
    assert d.begin("c1") is False
    assert d.begin("c2") is True
    assert "c1" in d and "c3" not in d
    assert len(d) == 2


def test_duplicate_is_answered_with_the_recorded_ack() -> None:
    d = CommandDeduplicator()
    d.begin("c1")
    assert d.ack_for("c1") is None  # still running: nothing to re-send yet
    outcome = ack("c1", success=False)
    d.complete(outcome)
    assert d.begin("c1") is False
    assert d.ack_for("c1") == outcome
    assert d.ack_for("unknown") is None


def test_memory_is_bounded_oldest_first() -> None:
    d = CommandDeduplicator(capacity=3)
    for cid in ["c1", "c2", "c3", "c4"]:
        assert d.begin(cid)
    assert len(d) == 3
    assert "c1" not in d
    assert d.begin("c2") is False
    assert d.begin("c1") is True  # forgotten, so it would run again: hence the sizing rule


def test_completed_outcomes_survive_a_restart() -> None:
    d = CommandDeduplicator(capacity=10)
    for cid in ["c1", "c2", "c3"]:
        d.begin(cid)
    d.complete(ack("c1"))
    d.complete(ack("c3", success=False))
    saved = d.completed()
    assert [a.command_id for a in saved] == ["c1", "c3"]
    restored = CommandDeduplicator(capacity=10, completed=saved)
    assert restored.begin("c1") is False
    assert restored.ack_for("c3") == ack("c3", success=False)
    assert restored.begin("c2") is True  # was running, never completed: not persisted


def test_command_capacity_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        CommandDeduplicator(capacity=0)


# --- SeqDeduplicator ---------------------------------------------------------------


def test_in_order_stream() -> None:
    d = SeqDeduplicator()
    assert [d.accept(s) for s in range(5)] == [True] * 5
    assert d.floor == 4 and d.highest == 4
    assert d.accept(4) is False
    assert d.accept(0) is False


def test_replay_interleaved_with_live_events() -> None:
    d = SeqDeduplicator(window=100)
    for s in range(10):  # delivered before the connection dropped
        d.accept(s)
    # After reconnect the hub sends live events 20.. while replaying 5..19.
    assert d.accept(20) is True
    assert d.floor == 9  # 10..19 not seen yet: the hub must keep them
    assert [d.accept(s) for s in range(5, 20)] == [False] * 5 + [True] * 10
    assert d.floor == 20
    assert d.accept(15) is False
    stats = d.statistics()
    assert (stats.accepted, stats.duplicates, stats.pending) == (21, 6, 0)


def test_gap_older_than_window_is_given_up() -> None:
    d = SeqDeduplicator(window=4)  # tracks seqs > highest - 4
    d.accept(0)
    for s in range(2, 5):
        d.accept(s)
    assert d.floor == 0  # seq 1 missing, still within the window (1 > 4 - 4)
    d.accept(5)  # now 1 <= 5 - 4: give it up
    assert d.floor == 5
    assert d.accept(1) is False
    assert d.statistics().pending == 0


def test_huge_jump_is_cheap_and_bounded() -> None:
    d = SeqDeduplicator(window=8)
    d.accept(0)
    d.accept(2**52)
    assert d.floor == 2**52 - 8
    assert d.statistics().pending == 1
    assert d.accept(2**52 - 3) is True
    assert d.accept(5) is False


def test_restored_floor_counts_as_seen() -> None:
    d = SeqDeduplicator(floor=41)
    assert d.accept(41) is False
    assert d.accept(3) is False
    assert d.accept(42) is True
    assert d.floor == 42


def test_seq_window_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        SeqDeduplicator(window=0)


@settings(database=None, deadline=None, max_examples=200)
@given(st.integers(1, 16), st.lists(st.integers(0, 60), max_size=120))
def test_seq_dedup_against_a_model(window: int, arrivals: list[int]) -> None:
    """Never accepts twice; always accepts a new seq within the window; bounded."""
    d = SeqDeduplicator(window=window)
    seen: set[int] = set()
    last_floor = -1
    for seq in arrivals:
        highest_before = d.highest
        got = d.accept(seq)
        if seq in seen:
            assert got is False
        elif seq > highest_before - window:
            assert got is True
        if got:
            seen.add(seq)
        assert d.floor >= last_floor  # the acked watermark never goes back
        last_floor = d.floor
        assert d.floor <= d.highest
        assert d.highest - d.floor <= window
        assert d.statistics().pending <= window
        # The floor (what the hub may drop) never covers an unseen seq that is
        # still inside the window.
        assert all(s in seen for s in range(max(0, d.highest - window + 1), d.floor + 1))
