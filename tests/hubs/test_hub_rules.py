"""HubConnection's rules, one by one, on the pure reducer (no I/O, no clock)."""

from __future__ import annotations

import pytest

from ensemble.actors import Close, Send, Spawn, Tell
from ensemble.actors.hubs import CLOSE_HUB_RELEASED, CLOSE_HUB_REPLACED, CLOSE_HUB_SILENT
from ensemble.errors import Conflict, InvalidInput, NotFound
from ensemble.hubs.protocol import TO_HUB, from_wire
from tests.hubs._drivers import HUB, OTHER_TENANT, P1, P2, TENANT, HubDriver, facts


def sends(decision):
    return [e.frame for e in decision.effects if isinstance(e, Send)]


def tells(decision, kind=None):
    return [e.command for e in decision.effects if isinstance(e, Tell) and (kind is None or e.command["type"] == kind)]


def test_connect_answers_the_welcome_facts_and_tells_the_tenant():
    d = HubDriver()
    decision = d.connect()
    assert decision.reply["claimed"] is True
    assert decision.reply["last_seq"] == -1
    assert decision.reply["offset"] == d.offset  # attach(since=offset): no catch-up frames
    hub_status = tells(decision, "hub_status")
    assert hub_status and hub_status[-1]["hub"]["is_online"] is True
    assert all(t.address.key == TENANT for t in decision.effects if isinstance(t, Tell))
    assert d.state["online"] and set(d.state["printers"]) == {P1, P2}


def test_seq_is_durable_and_a_replay_is_only_acknowledged():
    d = HubDriver()
    d.connect()
    first = d.status(status="idle", seq=0)
    assert sends(first) == [{"type": "seq_ack", "seq": 0}]
    d.status(status="printing", seq=1)
    replay = d.status(status="idle", seq=1)
    assert replay.events == [] and sends(replay) == [{"type": "seq_ack", "seq": 1}]
    assert d.state["printers"][P1]["status"] == "printing"
    # The same stream on a new connection resumes from the watermark ...
    assert d.connect(stream="stream-1").reply["last_seq"] == 1
    # ... a new stream (reflashed hub) starts over.
    assert d.connect(stream="stream-2").reply["last_seq"] == -1
    assert d.status(status="idle", seq=0).events


def test_gaps_from_dropped_statuses_are_fine():
    d = HubDriver()
    d.connect()
    d.status(seq=0)
    assert d.status(status="printing", seq=7).events  # 1..6 were dropped by the hub's full outbox
    assert d.state["last_seq"] == 7


def test_messages_of_a_replaced_connection_are_ignored():
    d = HubDriver()
    d.connect()
    old = d.conn
    decision = d.connect()
    assert any(isinstance(e, Close) and e.code == CLOSE_HUB_REPLACED for e in decision.effects)
    stale = d.send({"type": "hub_message", "conn": old,
                    "message": {"type": "printer_status", "seq": 5, "printer_id": P1, "status": "error", "ts": 1}})
    assert stale.events == [] and stale.effects == []
    assert d.send({"type": "hub_disconnect", "conn": old}).events == []
    assert d.state["online"]


def test_unclaimed_hub_reports_reach_no_tenant_and_it_gets_no_commands():
    d = HubDriver()
    decision = d.connect(tenant=None)
    assert decision.reply["claimed"] is False
    assert tells(decision) == []
    report = d.status(status="printing")
    assert tells(report) == [] and sends(report) == [{"type": "seq_ack", "seq": 0}]
    with pytest.raises(NotFound):
        d.start_job(P1)
    assert sends(d.ready()) == []


def test_a_status_for_an_unknown_printer_reloads_the_facts_once():
    d = HubDriver(load_facts=lambda hub_id: None)
    d.connect(printers=(P1,))
    first = d.status(printer=P2, status="idle")
    assert any(isinstance(e, Spawn) for e in first.effects)
    assert tells(first, "printer_status") == []
    again = d.status(printer=P2, status="idle")
    assert not any(isinstance(e, Spawn) for e in again.effects)  # at most one reload per 30 s
    d.send({"type": "hub_facts", "facts": facts(printers=(P1, P2))})
    assert tells(d.status(printer=P2, status="printing"), "printer_status")


def test_a_job_submitted_while_the_hub_is_offline_is_sent_on_reconnect_until_acknowledged():
    d = HubDriver()
    d.connect()
    d.ready()
    d.disconnect()
    decision = d.start_job(P1)
    job = decision.reply
    assert job["status"] == "queued" and sends(decision) == []  # offline: nothing sent
    d.connect()
    resent = sends(d.ready())
    assert [f["type"] for f in resent] == ["print_command"]
    command = from_wire(resent[0], accept=TO_HUB)
    assert command.job_id == job["job_id"] and command.command_id == job["command_id"]
    # Reconnect again before the ack: sent again (the hub de-duplicates).
    d.connect()
    assert [f["command_id"] for f in sends(d.ready())] == [job["command_id"]]
    ack = d.ack(job["command_id"])
    assert d.state["commands"] == {}
    assert d.state["jobs"][job["job_id"]]["status"] == "printing"
    assert [t["job"]["status"] for t in tells(ack, "job_update")] == ["printing"]
    d.connect()
    assert sends(d.ready()) == []


def test_a_command_that_is_never_acknowledged_expires_with_a_clear_failure():
    d = HubDriver(command_ttl_s=60)
    d.connect()
    d.ready()
    job = d.start_job(P1).reply
    assert d.b.next_alarm(d.state).timestamp() == pytest.approx(d.now + 60)
    d.advance(61)
    decision = d.alarm()
    assert job["job_id"] not in d.state["jobs"]
    failed = [t["job"] for t in tells(decision, "job_update")]
    assert failed[-1]["status"] == "failed"
    assert "did not acknowledge the print command within 60 s" in failed[-1]["failure_reason"]
    assert [t["alert"]["kind"] for t in tells(decision, "alert")] == ["job_failed"]
    assert d.state["commands"] == {}


def test_status_reports_drive_the_job_to_completion():
    d = HubDriver()
    d.connect()
    d.ready()
    job = d.start_job(P1).reply
    d.hub({"type": "file_progress", "job_id": job["job_id"], "printer_id": P1, "phase": "downloading",
           "bytes_sent": 500, "bytes_total": 1000, "ts": 1})
    assert d.state["jobs"][job["job_id"]]["status"] == "uploading"
    d.ack(job["command_id"])
    d.status(status="printing", job_id=job["job_id"], progress=40, layer=8, total_layers=20, remaining_s=90)
    running = d.state["jobs"][job["job_id"]]
    assert (running["status"], running["progress"], running["current_layer"]) == ("printing", 40, 8)
    done = d.status(status="idle", job_id=job["job_id"], progress=100)
    assert job["job_id"] not in d.state["jobs"]
    final = tells(done, "job_update")[-1]["job"]
    assert final["status"] == "completed" and final["progress"] == 100
    # A late replayed report changes nothing.
    assert tells(d.status(status="printing", job_id=job["job_id"], progress=50), "job_update") == []


def test_a_printer_error_fails_the_job_and_alerts():
    d = HubDriver()
    d.connect()
    d.ready()
    job = d.start_job(P1).reply
    d.ack(job["command_id"])
    decision = d.status(status="error", job_id=job["job_id"], error_code="E_NOZZLE_CLOG")
    kinds = [t["alert"]["kind"] for t in tells(decision, "alert")]
    assert "printer_error" in kinds and "job_failed" in kinds
    assert tells(decision, "job_update")[-1]["job"]["failure_reason"] == "printer error E_NOZZLE_CLOG"


def test_user_actions_follow_the_transition_table():
    d = HubDriver()
    d.connect()
    d.ready()
    job = d.start_job(P1).reply
    with pytest.raises(Conflict):
        d.control(job["job_id"], "pause")  # queued
    with pytest.raises(Conflict):
        d.control(job["job_id"], "resume")
    with pytest.raises(Conflict):
        d.start_job(P1)  # one active job per printer
    d.ack(job["command_id"])
    pause = d.control(job["job_id"], "pause")
    assert [f["action"] for f in sends(pause)] == ["pause"]
    d.ack(pause.events[0]["command"]["command_id"])
    assert d.state["jobs"][job["job_id"]]["status"] == "paused"
    with pytest.raises(Conflict):
        d.control(job["job_id"], "pause")
    with pytest.raises(NotFound):
        d.control(job["job_id"], "resume", tenant=OTHER_TENANT)


def test_cancel_drops_an_unsent_print_but_stops_a_sent_one():
    d = HubDriver()
    d.connect()
    d.disconnect()
    unsent = d.start_job(P1).reply
    decision = d.control(unsent["job_id"], "cancel")
    assert decision.reply["status"] == "cancelled" and d.state["commands"] == {}
    d.connect()
    d.ready()
    sent = d.start_job(P2).reply
    decision = d.control(sent["job_id"], "cancel")
    assert decision.reply["status"] == "cancelled"
    assert [f["action"] for f in sends(decision)] == ["stop"]


def test_release_cuts_the_hub_off_at_once():
    d = HubDriver()
    d.connect()
    d.ready()
    job = d.start_job(P1).reply
    decision = d.send({"type": "hub_facts", "facts": facts(tenant=None)})
    assert any(isinstance(e, Close) and e.code == CLOSE_HUB_RELEASED for e in decision.effects)
    assert d.state["tenant_id"] is None and d.state["commands"] == {} and d.state["jobs"] == {}
    removed = tells(decision, "hub_removed")
    assert removed and removed[0]["hub_id"] == HUB
    assert [t["job"]["status"] for t in tells(decision, "job_update")] == ["failed"]
    assert job["job_id"]
    assert tells(d.status(status="printing")) == []


def test_silence_marks_the_hub_offline_and_alerts_once():
    d = HubDriver(offline_after_s=300)
    d.connect()
    d.status()
    d.advance(301)
    decision = d.alarm()
    assert any(isinstance(e, Close) and e.code == CLOSE_HUB_SILENT for e in decision.effects)
    assert not d.state["online"]
    assert [t["alert"]["kind"] for t in tells(decision, "alert")] == ["hub_offline"]
    assert all(p["status"] == "offline" for p in d.state["printers"].values())
    assert d.b.next_alarm(d.state) is None
    d.advance(600)
    assert tells(d.alarm(), "alert") == []


def test_a_disconnected_hub_is_offline_at_once_and_alerted_after_the_silence():
    d = HubDriver(offline_after_s=300)
    d.connect()
    decision = d.disconnect()
    assert tells(decision, "hub_status")[-1]["hub"]["is_online"] is False
    assert tells(decision, "alert") == []
    d.advance(100)
    assert tells(d.alarm(), "alert") == []  # an early or stale alarm does nothing
    d.advance(201)
    assert [t["alert"]["kind"] for t in tells(d.alarm(), "alert")] == ["hub_offline"]
    # Back online: the next silence alerts again.
    d.connect()
    assert d.state["offline_alerted"] is False


def test_unknown_commands_are_refused():
    d = HubDriver()
    with pytest.raises(InvalidInput):
        d.send({"type": "explode"})
