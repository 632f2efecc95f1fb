"""The print job state machine: one table, answered the same way everywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ensemble.actors.hubs import job_states as js
from ensemble.errors import Conflict

JOB = js.new_job(job_id="j", tenant_id="t", printer_id="p", hub_id="h", file_id=None, file_name="f", file_size=1,
                 command_id="c", submitted_by=None, now_ms=0)

# The table of the issue, spelled out: queued -> uploading -> printing <-> paused -> completed/failed/cancelled.
EXPECTED = {
    ("queued", "uploading"), ("queued", "printing"), ("queued", "completed"), ("queued", "failed"),
    ("queued", "cancelled"),
    ("uploading", "printing"), ("uploading", "completed"), ("uploading", "failed"), ("uploading", "cancelled"),
    ("printing", "paused"), ("printing", "completed"), ("printing", "failed"), ("printing", "cancelled"),
    ("paused", "printing"), ("paused", "completed"), ("paused", "failed"), ("paused", "cancelled"),
}


def test_the_table_is_the_documented_one():
    assert {(a, b) for a, targets in js.TRANSITIONS.items() for b in targets} == EXPECTED
    assert set(js.TRANSITIONS) == set(js.STATUSES)
    assert js.TERMINAL == {"completed", "failed", "cancelled"}


@pytest.mark.parametrize(
    ("status", "action", "allowed"),
    [
        ("queued", "pause", False), ("uploading", "pause", False), ("printing", "pause", True),
        ("paused", "pause", False), ("printing", "resume", False), ("paused", "resume", True),
        ("queued", "cancel", True), ("uploading", "cancel", True), ("printing", "cancel", True),
        ("paused", "cancel", True), ("completed", "cancel", False), ("failed", "cancel", False),
        ("cancelled", "cancel", False), ("completed", "resume", False),
    ],
)
def test_user_actions(status, action, allowed):
    if allowed:
        js.check_action(status, action)
    else:
        with pytest.raises(Conflict) as err:
            js.check_action(status, action)
        assert err.value.status == 409
        assert err.value.details["status"] == status


def test_terminal_jobs_never_move():
    for terminal in js.TERMINAL:
        job = {**JOB, "status": terminal}
        for target in js.STATUSES:
            assert js.advance(job, target, 1) is None


def test_device_reports():
    queued = JOB
    printing = js.on_status_report(queued, {"status": "printing", "job_id": "j", "progress": 10}, 5)
    assert printing["status"] == "printing" and printing["started_at"] == 5 and printing["progress"] == 10
    paused = js.on_status_report(printing, {"status": "paused", "job_id": "j"}, 6)
    assert paused["status"] == "paused"
    done = js.on_status_report(paused, {"status": "idle", "job_id": "j", "progress": 100}, 9)
    assert done["status"] == "completed" and done["finished_at"] == 9
    stopped = js.on_status_report(printing, {"status": "idle", "job_id": "j", "progress": 30}, 7)
    assert stopped["status"] == "failed" and "stopped on the printer" in stopped["failure_reason"]
    # Idle before the print starts (the file is still uploading) is not a failure.
    assert js.on_status_report(queued, {"status": "idle", "job_id": "j", "progress": 0}, 7) is None
    assert js.on_file_progress(printing, 5, 10, 8) is None
    assert js.on_print_ack(queued, False, "no space", 3)["failure_reason"] == "hub refused the print: no space"


@given(st.lists(st.sampled_from(js.STATUSES), max_size=20))
def test_any_sequence_of_moves_stays_inside_the_table(moves):
    job = JOB
    for target in moves:
        moved = js.advance(job, target, 1)
        if moved is not None:
            assert job["status"] == target or (job["status"], target) in EXPECTED
            job = moved
    assert job["status"] in js.STATUSES
