"""Property tests of the two reducers: replaying the log gives the state live handling gave.

Random command sequences (connects, disconnects, reports with duplicate and
gapped seqs, acks, jobs, user actions, releases, alarms, time passing) are
handled live with ``decide`` + ``apply``; the events, stored as the runtime
stores them (msgpack), are then replayed from the initial state and from a
snapshot taken midway.  Both must equal the live state, and the state must
keep its invariants throughout.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.actors._activation import pack_state, unpack_state
from ensemble.actors.hubs import job_states
from ensemble.errors import EnsembleError
from tests.hubs._drivers import OTHER_TENANT, P1, P2, TENANT, DashboardDriver, HubDriver, facts

STATUSES = ("idle", "printing", "paused", "error", "offline", "maintenance")

hub_steps = st.lists(
    st.one_of(
        st.tuples(st.just("connect"), st.sampled_from(["s1", "s2"]), st.sampled_from([TENANT, TENANT, None])),
        st.just(("ready",)),
        st.just(("disconnect",)),
        st.just(("heartbeat",)),
        st.tuples(st.just("status"), st.sampled_from([P1, P2, "66666666-6666-4666-8666-666666666666"]),
                  st.sampled_from(STATUSES), st.integers(0, 100), st.booleans(), st.integers(-2, 2)),
        st.tuples(st.just("ack"), st.integers(0, 4), st.booleans(), st.integers(-2, 1)),
        st.tuples(st.just("progress"), st.integers(0, 3), st.integers(0, 1000)),
        st.tuples(st.just("start"), st.sampled_from([P1, P2]), st.sampled_from([TENANT, OTHER_TENANT])),
        st.tuples(st.just("control"), st.integers(0, 3), st.sampled_from(["pause", "resume", "cancel"])),
        st.tuples(st.just("facts"), st.sampled_from([TENANT, None, OTHER_TENANT]), st.sampled_from([(P1, P2), (P1,)])),
        st.tuples(st.just("advance"), st.floats(0, 400)),
        st.just(("alarm",)),
    ),
    max_size=40,
)


def _stored(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the runtime logs and reads it back."""
    out: dict[str, Any] = msgpack.unpackb(msgpack.packb(event, use_bin_type=True), raw=False, strict_map_key=False)
    return out


def _run_hub_step(d: HubDriver, step: tuple[Any, ...]) -> None:
    kind = step[0]
    jobs = list(d.state["jobs"].values())
    pending = sorted(d.state["commands"].values(), key=lambda c: c["n"])
    if kind == "connect":
        d.connect(stream=step[1], tenant=step[2])
    elif kind == "ready":
        d.ready()
    elif kind == "disconnect":
        d.disconnect()
    elif kind == "heartbeat":
        d.hub({"type": "heartbeat", "ts": int(d.now * 1000), "uptime_s": 1})
    elif kind == "status":
        _, printer, status, progress, with_job, seq_delta = step
        job_id = next((j["job_id"] for j in jobs if j["printer_id"] == printer), None) if with_job else None
        fields: dict[str, Any] = {"progress": progress}
        if job_id:
            fields["job_id"] = job_id
        d.status(printer=printer, status=status, seq=max(0, d.seq + seq_delta), **fields)
    elif kind == "ack" and pending:
        _, index, success, seq_delta = step
        command = pending[index % len(pending)]
        message = {"type": "command_ack", "command_id": command["command_id"], "success": success, "ts": 1}
        if not success:
            message["error"] = "refused"
        d.hub(message, seq=max(0, d.seq + seq_delta))
    elif kind == "progress" and jobs:
        _, index, sent = step
        job = jobs[index % len(jobs)]
        d.hub({"type": "file_progress", "job_id": job["job_id"], "printer_id": job["printer_id"],
               "phase": "uploading", "bytes_sent": sent, "bytes_total": 1000, "ts": 1})
    elif kind == "start":
        d.start_job(step[1], tenant=step[2])
    elif kind == "control" and jobs:
        _, index, action = step
        d.control(jobs[index % len(jobs)]["job_id"], action)
    elif kind == "facts":
        d.send({"type": "hub_facts", "facts": facts(step[1], step[2])})
    elif kind == "advance":
        d.advance(step[1])
    elif kind == "alarm":
        d.alarm()


def _hub_invariants(d: HubDriver) -> None:
    s = d.state
    assert all(j["status"] in job_states.ACTIVE for j in s["jobs"].values())
    if s["tenant_id"] is None:
        assert s["jobs"] == {} and s["commands"] == {} and s["printers"] == {}
    assert all(j["tenant_id"] == s["tenant_id"] for j in s["jobs"].values())
    printers_with_jobs = [j["printer_id"] for j in s["jobs"].values()]
    assert len(printers_with_jobs) == len(set(printers_with_jobs))  # one active job per printer
    assert all(c["printer_id"] in s["printers"] for c in s["commands"].values())
    if not s["online"]:
        assert s["conn"] is None and not s["ready"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(hub_steps, st.integers(0, 40))
def test_hub_connection_replay_equals_live(steps, snapshot_at):
    d = HubDriver(offline_after_s=300, command_ttl_s=120)
    snapshot: tuple[int, bytes] | None = None
    for i, step in enumerate(steps):
        if i == snapshot_at:
            snapshot = (len(d.events), pack_state(d.b, d.state))
        try:
            _run_hub_step(d, step)
        except EnsembleError:
            pass  # a refusal changes nothing
        _hub_invariants(d)
    stored = [_stored(e) for e in d.events]
    replayed = d.b.initial_state(d.state["hub_id"])
    for event in stored:
        replayed = d.b.apply(replayed, event)
    assert replayed == _stored(d.state)
    if snapshot is not None:
        count, packed = snapshot
        restored = unpack_state(d.b, d.b.snapshot_version, packed)
        for event in stored[count:]:
            restored = d.b.apply(restored, event)
        assert restored == _stored(d.state)


# -- TenantDashboard ----------------------------------------------------------------

HUBS = ("hub-a", "hub-b")
JOBS = ("job-1", "job-2", "job-3")

dashboard_steps = st.lists(
    st.one_of(
        st.tuples(st.just("printer"), st.sampled_from([P1, P2]), st.sampled_from(STATUSES), st.sampled_from(HUBS),
                  st.integers(0, 20)),
        st.tuples(st.just("job"), st.sampled_from(JOBS), st.sampled_from(job_states.STATUSES),
                  st.sampled_from(HUBS), st.integers(0, 20)),
        st.tuples(st.just("hub"), st.sampled_from(HUBS), st.booleans(), st.integers(0, 20)),
        st.tuples(st.just("hub_removed"), st.sampled_from(HUBS), st.integers(0, 20)),
        st.tuples(st.just("alert"), st.sampled_from(["hub_offline", "printer_error"])),
        st.tuples(st.just("sync"), st.lists(st.sampled_from([P1, P2]), unique=True),
                  st.lists(st.sampled_from(HUBS), unique=True),
                  st.lists(st.tuples(st.sampled_from(JOBS), st.sampled_from(job_states.STATUSES)), max_size=3)),
    ),
    max_size=40,
)


def _run_dashboard_step(d: DashboardDriver, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "printer":
        _, printer, status, hub, offset = step
        d.send({"type": "printer_status", "printer": {"printer_id": printer, "status": status, "hub_id": hub},
                "v": [hub, offset]})
    elif kind == "job":
        _, job, status, hub, offset = step
        d.send({"type": "job_update", "job": {"job_id": job, "status": status, "printer_id": P1}, "v": [hub, offset]})
    elif kind == "hub":
        _, hub, online, offset = step
        d.send({"type": "hub_status", "hub": {"hub_id": hub, "is_online": online, "printer_count": 1},
                "v": [hub, offset]})
    elif kind == "hub_removed":
        d.send({"type": "hub_removed", "hub_id": step[1], "printer_ids": [], "v": [step[1], step[2]]})
    elif kind == "alert":
        d.send({"type": "alert", "alert": {"alert_id": str(uuid.uuid4()), "kind": step[1], "severity": "warning",
                                           "message": "m", "ts": 1}})
    elif kind == "sync":
        _, printers, hubs, jobs = step
        d.send({"type": "sync_catalog", "catalog": {
            "printers": [{"printer_id": p, "status": "offline", "name": p[:4]} for p in printers],
            "hubs": [{"hub_id": h, "is_online": False, "printer_count": 0} for h in hubs],
            "jobs": [{"job_id": j, "status": s, "v": None} for j, s in jobs],
        }})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(dashboard_steps, st.integers(0, 40))
def test_tenant_dashboard_replay_equals_live(steps, snapshot_at):
    d = DashboardDriver()
    snapshot: tuple[int, bytes] | None = None
    for i, step in enumerate(steps):
        if i == snapshot_at:
            snapshot = (len(d.events), pack_state(d.b, d.state))
        _run_dashboard_step(d, step)
        assert all(j["status"] not in job_states.TERMINAL for j in d.state["jobs"].values())
    stored = [_stored(e) for e in d.events]
    replayed = d.b.initial_state(TENANT)
    for event in stored:
        replayed = d.b.apply(replayed, event)
    assert replayed == _stored(d.state)
    if snapshot is not None:
        count, packed = snapshot
        restored = unpack_state(d.b, d.b.snapshot_version, packed)
        for event in stored[count:]:
            restored = d.b.apply(restored, event)
        assert restored == _stored(d.state)


@given(dashboard_steps)
def test_an_older_update_never_replaces_a_newer_one(steps):
    d = DashboardDriver()
    for step in steps:
        _run_dashboard_step(d, step)
    for printer in d.state["printers"].values():
        v = printer.get("v")
        if v is not None:
            stale = d.send({"type": "printer_status", "printer": {**printer, "status": "error"}, "v": [v[0], v[1] - 1]})
            assert stale.events == []
