"""TenantDashboard's rules on the pure reducer, and what a slow dashboard receives."""

from __future__ import annotations

from ensemble.actors import OutboundFrame, Subscriber
from ensemble.actors.dashboards import TenantDashboard, install_printer_filter
from ensemble.hubs.protocol import TO_DASHBOARD, from_wire
from tests.hubs._drivers import P1, P2, DashboardDriver

HUB_A = "hub-a"


def printer(pid: str, status: str = "idle", **fields):
    return {"printer_id": pid, "status": status, "hub_id": HUB_A, **fields}


def test_snapshot_and_live_frames_are_protocol_messages() -> None:
    d = DashboardDriver()
    d.send({"type": "sync_catalog", "catalog": {
        "printers": [{"printer_id": P1, "status": "offline", "name": "One", "hub_id": HUB_A},
                     {"printer_id": P2, "status": "idle", "name": "Two"}],
        "hubs": [{"hub_id": HUB_A, "is_online": True, "printer_count": 1, "name": "Shelf"}],
        "jobs": [{"job_id": "j1", "status": "printing", "printer_id": P1, "progress": 10, "v": [HUB_A, 3]},
                 {"job_id": "j0", "status": "completed", "printer_id": P1, "v": [HUB_A, 2]}],
    }})
    snapshot = from_wire(d.b.state_frame(d.state), accept=TO_DASHBOARD)
    assert [p.printer_id for p in snapshot.printers] == [P1, P2]
    assert snapshot.printers[0].name == "One" and [j.job_id for j in snapshot.jobs] == ["j1"]  # only active jobs
    decision = d.send({"type": "printer_status", "printer": printer(P1, "printing", progress=40), "v": [HUB_A, 5]})
    frame = d.b.event_frame(decision.events[0])
    parsed = from_wire(frame, accept=TO_DASHBOARD)
    assert parsed.type == "printer_status" and parsed.progress == 40 and parsed.name == "One"
    for event in d.send({"type": "job_update", "job": {"job_id": "j1", "status": "completed", "printer_id": P1},
                         "v": [HUB_A, 6]}).events:
        assert from_wire(d.b.event_frame(event), accept=TO_DASHBOARD).type == "job_update"
    assert d.state["jobs"] == {}
    alert = d.send({"type": "alert", "alert": {"alert_id": "a1", "kind": "hub_offline", "severity": "warning",
                                               "message": "gone", "ts": 1, "hub_id": HUB_A}})
    assert from_wire(d.b.event_frame(alert.events[0]), accept=TO_DASHBOARD).type == "alert"


def test_sync_changes_only_what_differs() -> None:
    d = DashboardDriver()
    catalog = {"printers": [{"printer_id": P1, "status": "idle", "name": "One", "hub_id": HUB_A}], "hubs": [],
               "jobs": []}
    assert d.send({"type": "sync_catalog", "catalog": catalog}).events
    d.send({"type": "printer_status", "printer": printer(P1, "printing", progress=50), "v": [HUB_A, 9]})
    # The catalog knows less than the live state: a sync keeps the live status.
    assert d.send({"type": "sync_catalog", "catalog": catalog}).events == []
    assert d.state["printers"][P1]["status"] == "printing"
    renamed = {**catalog, "printers": [{"printer_id": P1, "status": "idle", "name": "Renamed", "hub_id": HUB_A}]}
    (event,) = d.send({"type": "sync_catalog", "catalog": renamed}).events
    assert event["printer"]["name"] == "Renamed" and event["printer"]["status"] == "printing"
    assert [e["type"] for e in d.send({"type": "sync_catalog", "catalog": {"printers": []}}).events] == [
        "printer_removed"]


def test_a_released_hub_detaches_its_printers() -> None:
    d = DashboardDriver()
    d.send({"type": "hub_status", "hub": {"hub_id": HUB_A, "is_online": True, "printer_count": 1}, "v": [HUB_A, 1]})
    d.send({"type": "printer_status", "printer": printer(P1, "printing"), "v": [HUB_A, 2]})
    decision = d.send({"type": "hub_removed", "hub_id": HUB_A, "printer_ids": [P1], "v": [HUB_A, 3]})
    frames = [d.b.event_frame(e) for e in decision.events]
    assert {f["type"] for f in frames} == {"printer_status", "hub_status"}
    assert d.state["hubs"] == {} and d.state["printers"][P1]["status"] == "offline"
    assert "hub_id" not in d.state["printers"][P1]


def test_check_printers_names_the_unknown_ones() -> None:
    d = DashboardDriver()
    d.send({"type": "printer_status", "printer": printer(P1), "v": [HUB_A, 1]})
    assert d.send({"type": "check_printers", "printer_ids": [P1, P2]}).reply == {"unknown": [P2]}


def _frame(board: TenantDashboard, message: dict) -> OutboundFrame:
    return OutboundFrame(message, board.coalesce_key(message))


def test_a_slow_dashboard_gets_the_latest_state_per_printer_never_an_unbounded_queue() -> None:
    board = TenantDashboard()
    sub = Subscriber(capacity=3, policy=board.slow_consumer_policy)
    for i in range(100):
        for pid in (P1, P2):
            sub.deliver(_frame(board, {"type": "printer_status", "printer_id": pid, "status": "printing",
                                       "progress": i, "offset": i}))
        sub.deliver(_frame(board, {"type": "job_update", "job_id": "j1", "status": "printing", "progress": i}))
    assert not sub.closed and sub.pending() == 3 and sub.coalesced > 0
    queued = [sub.receive_nowait().message for _ in range(3)]
    assert {(m["type"], m.get("printer_id"), m["progress"]) for m in queued} == {
        ("printer_status", P1, 99), ("printer_status", P2, 99), ("job_update", None, 99)}


def test_printer_filters_on_a_connection() -> None:
    sub = Subscriber(capacity=10, policy="coalesce")
    chooser = install_printer_filter(sub)
    frame = lambda pid: OutboundFrame({"type": "printer_status", "printer_id": pid, "status": "idle"})  # noqa: E731
    hub = OutboundFrame({"type": "hub_status", "hub_id": HUB_A, "is_online": True})
    assert sub.accepts(frame(P1)) and sub.accepts(frame(P2))  # default: every printer
    chooser.subscribe([P1])
    assert sub.accepts(frame(P1)) and not sub.accepts(frame(P2)) and sub.accepts(hub)
    chooser.subscribe([P2])
    assert sub.accepts(frame(P2))
    chooser.unsubscribe([P1], every=[P1, P2])
    assert not sub.accepts(frame(P1)) and sub.accepts(frame(P2))
    chooser.unsubscribe(None, every=[P1, P2])
    assert not sub.accepts(frame(P2)) and sub.accepts(hub)
    chooser.subscribe(None)
    assert sub.accepts(frame(P1))
