"""The DiagnosticSession rules, pure: decide/apply without runtime or database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ensemble.actors import Close, Send, Spawn
from ensemble.actors.sessions import (
    CLOSE_NOT_PARTICIPANT,
    CLOSE_SESSION_COMPLETED,
    AiBusy,
    DiagnosticSession,
    SessionCompleted,
    SessionLimits,
    event_frame,
    message_id,
)
from ensemble.errors import Conflict, EnsembleError, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from tests.sessions._helpers import Caller, Driver, create_command, new_ids


def _session(limits: SessionLimits | None = None) -> tuple[Driver, Caller, str]:
    session_id, tenant_id, user_id = new_ids()
    alice = Caller(user_id, tenant_id)
    d = Driver(DiagnosticSession(limits=limits), session_id)
    d.run(create_command(session_id, tenant_id, alice), alice)
    return d, alice, tenant_id


def _invite(d: Driver, by: Caller, name: str = "Bob") -> Caller:
    bob = Caller(str(uuid.uuid4()), by.tenant_id)
    d.run({"type": "invite", "user": {"id": bob.user_id, "name": name, "member_role": "technician"}}, by)
    return bob


def test_create_makes_the_creator_primary_and_adds_the_ai() -> None:
    d, alice, tenant_id = _session()
    assert [e["type"] for e in d.log] == ["session_created", "participant_joined", "participant_joined"]
    assert d.state.status == "active"
    roles = {p.id: p.role for p in d.state.participants.values()}
    assert roles == {alice.user_id: "primary", "ai": "ai"}
    with pytest.raises(Conflict):
        d.run(create_command(d.key, tenant_id, alice), alice)


def test_other_tenants_do_not_see_the_session() -> None:
    d, alice, _ = _session()
    outsider = Caller(alice.user_id, str(uuid.uuid4()))  # even the same user id in another tenant
    for command in ({"type": "post_message", "text": "hi"}, {"type": "get"}, {"type": "connect", "device": "x"}):
        with pytest.raises(NotFound):
            d.run(command, outsider)


def test_non_participants_of_the_tenant_may_not_send_or_connect() -> None:
    d, alice, tenant_id = _session()
    carol = Caller(str(uuid.uuid4()), tenant_id)
    with pytest.raises(Forbidden):
        d.run({"type": "post_message", "text": "hi"}, carol)
    with pytest.raises(Forbidden):
        d.run({"type": "connect", "device": "dev-c"}, carol, subscriber_id=9)
    with pytest.raises(Forbidden):
        d.run({"type": "invite", "user": {"id": str(uuid.uuid4()), "name": "X"}}, carol)
    # A dispatcher of the tenant may invite (and thereby bring people in) without being a participant.
    lead = Caller(str(uuid.uuid4()), tenant_id, role="operator")
    d.run({"type": "invite", "user": {"id": carol.user_id, "name": "Carol"}}, lead)
    d.run({"type": "post_message", "text": "now I am in"}, carol)


def test_a_retried_send_is_not_stored_twice_and_gets_the_original_offset() -> None:
    d, alice, _ = _session()
    first = d.run({"type": "post_message", "text": "pressure low", "client_id": "c-1"}, alice, subscriber_id=3)
    offset = first.reply["offset"]
    assert first.reply["duplicate"] is False
    events_before = len(d.log)
    again = d.run({"type": "post_message", "text": "pressure low", "client_id": "c-1"}, alice, subscriber_id=4)
    assert again.events == []
    assert again.reply["offset"] == offset and again.reply["duplicate"] is True
    assert again.reply["message_id"] == first.reply["message_id"] == message_id(d.key, offset)
    assert len(d.log) == events_before
    acks = [e.frame for e in again.effects if isinstance(e, Send)]
    assert acks == [{"type": "ack", "client_id": "c-1", "message_offset": offset, "message_id": first.reply["message_id"], "duplicate": True}]
    # The same client id from another sender is another message.
    bob = _invite(d, alice)
    other = d.run({"type": "post_message", "text": "mine", "client_id": "c-1"}, bob)
    assert other.reply["duplicate"] is False and other.reply["offset"] != offset


def test_offline_messages_keep_their_client_time_and_take_the_server_order() -> None:
    d, alice, _ = _session()
    later = d.run({"type": "post_message", "text": "written second", "client_id": "b", "sent_at": "2024-05-01T10:05:00Z"}, alice)
    earlier = d.run({"type": "post_message", "text": "written first", "client_id": "a", "sent_at": "2024-05-01T12:00:00+02:00"}, alice)
    assert later.reply["offset"] < earlier.reply["offset"]
    assert later.reply["message"]["client_sent_at"] == "2024-05-01T10:05:00+00:00"
    assert earlier.reply["message"]["client_sent_at"] == "2024-05-01T10:00:00+00:00"


@pytest.mark.parametrize(
    "command, error, field",
    [
        ({"type": "post_message"}, InvalidInput, "text"),
        ({"type": "post_message", "text": 5}, InvalidInput, "text"),
        ({"type": "post_message", "text": "   "}, InvalidInput, "text"),
        ({"type": "post_message", "text": "x" * 4001}, PayloadTooLarge, "text"),
        ({"type": "post_message", "text": "hi", "client_id": "has space"}, InvalidInput, "client_id"),
        ({"type": "post_message", "text": "hi", "sent_at": "yesterday"}, InvalidInput, "sent_at"),
        ({"type": "post_message", "text": "hi", "sent_at": "2024-05-01T10:00:00"}, InvalidInput, "sent_at"),
        ({"type": "post_message", "text": "hi", "ask_ai": "yes"}, InvalidInput, "ask_ai"),
        ({"type": "post_message", "text": "hi", "colour": "red"}, InvalidInput, "colour"),
        ({"type": "post_reading", "kind": "suction_pressure", "value": "68", "unit": "psi"}, InvalidInput, "value"),
        ({"type": "post_reading", "kind": "suction_pressure", "value": True, "unit": "psi"}, InvalidInput, "value"),
        ({"type": "post_reading", "value": 68, "unit": "psi"}, InvalidInput, "kind"),
        ({"type": "post_reading", "kind": "p", "value": 68}, InvalidInput, "unit"),
        ({"type": "post_reading", "kind": "p", "value": 1, "unit": "psi", "equipment_id": "nope"}, InvalidInput, "equipment_id"),
    ],
)
def test_malformed_sends_are_refused_naming_the_field_and_store_nothing(
    command: dict[str, Any], error: type[EnsembleError], field: str
) -> None:
    d, alice, _ = _session()
    before = len(d.log)
    with pytest.raises(error) as info:
        d.run(command, alice)
    assert info.value.details[0]["field"] == field
    assert len(d.log) == before


def test_the_text_limit_is_in_the_message() -> None:
    d, alice, _ = _session(SessionLimits(max_text_chars=10))
    with pytest.raises(PayloadTooLarge, match="at most 10 characters"):
        d.run({"type": "post_message", "text": "x" * 11}, alice)


def test_attachments_over_the_limit_are_refused_with_the_limit() -> None:
    d, alice, _ = _session(SessionLimits(max_attachment_bytes=1000))
    command = {
        "type": "post_attachment", "file": {"id": str(uuid.uuid4()), "name": "coil.jpg", "content_type": "image/jpeg",
                                           "size_bytes": 1001},
        "url": "http://x/y", "url_expires_at": None,
    }
    with pytest.raises(PayloadTooLarge, match="at most 1000 bytes"):
        d.run(command, alice)
    command["file"]["size_bytes"] = 1000
    decision = d.run({**command, "caption": "the coil"}, alice)
    assert d.log[-1]["type"] == "attachment_added"
    assert decision.reply["message"]["attachment"]["caption"] == "the coil"


def test_readings_are_structured_messages() -> None:
    d, alice, _ = _session()
    equipment_id = str(uuid.uuid4())
    decision = d.run(
        {"type": "post_reading", "kind": "suction_pressure", "value": 68.5, "unit": "psi", "equipment_id": equipment_id,
         "client_id": "r1"},
        alice,
    )
    message = decision.reply["message"]
    assert message["kind"] == "reading" and message["text"] == "suction_pressure: 68.5 psi"
    assert message["reading"] == {"kind": "suction_pressure", "value": 68.5, "unit": "psi", "equipment_id": equipment_id, "note": None}
    assert event_frame(d.log[-1]) == {"type": "reading", "message": message}


def test_presence_counts_devices_and_drops_connections_the_gateway_no_longer_holds() -> None:
    d, alice, _ = _session()
    d.run({"type": "connect", "device": "phone", "live": ["phone"]}, alice, subscriber_id=1)
    d.run({"type": "connect", "device": "tablet", "live": ["phone", "tablet"]}, alice, subscriber_id=2)
    me = d.state.participants[alice.user_id]
    assert me.online and me.devices == {"phone": 1, "tablet": 2}
    frames = [event_frame(e) for e in d.log if e["type"] == "presence"]
    assert [(f["online"], f["devices"]) for f in frames if f] == [(True, 1), (True, 2)]
    d.run({"type": "disconnect", "device": "phone"})
    assert d.state.participants[alice.user_id].online  # still on the tablet
    # After a restart the tablet's connection is gone; the next connect says so.
    d.run({"type": "connect", "device": "laptop", "live": ["laptop"]}, alice, subscriber_id=1)
    presence = [e for e in d.log if e["type"] == "presence"][-2:]
    assert [(e["device"], e["connected"]) for e in presence] == [("tablet", False), ("laptop", True)]
    assert d.state.participants[alice.user_id].devices == {"laptop": 1}
    d.run({"type": "disconnect", "device": "laptop"})
    assert not d.state.participants[alice.user_id].online
    # Unknown devices, and disconnects from a person, change nothing.
    before = len(d.log)
    d.run({"type": "disconnect", "device": "laptop"})
    with pytest.raises(Forbidden):
        d.run({"type": "disconnect", "device": "laptop"}, alice)
    assert len(d.log) == before


def test_leaving_closes_only_the_leavers_connections() -> None:
    d, alice, _ = _session()
    bob = _invite(d, alice)
    d.run({"type": "connect", "device": "a1", "live": ["a1"]}, alice, subscriber_id=11)
    d.run({"type": "connect", "device": "b1", "live": ["a1", "b1"]}, bob, subscriber_id=12)
    d.run({"type": "connect", "device": "b2", "live": ["a1", "b1", "b2"]}, bob, subscriber_id=13)
    decision = d.run({"type": "leave"}, bob)
    closes = sorted((e.subscriber_id, e.code) for e in decision.effects if isinstance(e, Close))
    assert closes == [(12, CLOSE_NOT_PARTICIPANT), (13, CLOSE_NOT_PARTICIPANT)]
    assert not d.state.participants[bob.user_id].active
    with pytest.raises(Forbidden):
        d.run({"type": "post_message", "text": "still here?"}, bob)
    with pytest.raises(Conflict):
        d.run({"type": "leave"}, bob)
    # Invited again, they are back.
    d.run({"type": "invite", "user": {"id": bob.user_id, "name": "Bob"}}, alice)
    d.run({"type": "post_message", "text": "back"}, bob)


def test_completion_makes_the_session_read_only_and_closes_every_socket() -> None:
    d, alice, _ = _session()
    d.run({"type": "post_message", "text": "before", "client_id": "m1"}, alice)
    d.run({"type": "connect", "device": "a1", "live": ["a1"]}, alice, subscriber_id=5)
    decision = d.run({"type": "complete", "summary": "Replaced the capacitor."}, alice)
    assert [e["type"] for e in decision.events] == ["session_completed"]
    assert [e for e in decision.effects if isinstance(e, Close)] == [Close(None, CLOSE_SESSION_COMPLETED, "session completed")]
    assert d.state.completed and d.state.summary == "Replaced the capacitor."
    assert not d.state.participants[alice.user_id].online
    before = len(d.log)
    for command in (
        {"type": "post_message", "text": "after"},
        {"type": "post_reading", "kind": "p", "value": 1, "unit": ""},
        {"type": "typing"},
        {"type": "complete", "summary": "again"},
        {"type": "leave"},
        {"type": "invite", "user": {"id": str(uuid.uuid4()), "name": "Late"}},
    ):
        with pytest.raises(SessionCompleted) as info:
            d.run(command, alice)
        assert info.value.status == 409 and info.value.code == "session_completed"
    # A retry of something stored before completion still gets its offset.
    assert d.run({"type": "post_message", "text": "before", "client_id": "m1"}, alice).reply["duplicate"] is True
    # Connecting to a completed session stores nothing and says so.
    assert d.run({"type": "connect", "device": "a2"}, alice, subscriber_id=6).reply["completed"] is True
    assert len(d.log) == before


def test_asking_the_ai_spawns_one_answer_and_a_second_question_waits() -> None:
    d, alice, _ = _session(SessionLimits(ai_timeout_s=30, ai_grace_s=5))
    d.run({"type": "post_reading", "kind": "suction_pressure", "value": 52, "unit": "psi"}, alice)
    decision = d.run({"type": "post_message", "text": "Why is suction low?", "ask_ai": True, "client_id": "q1"}, alice)
    assert [e["type"] for e in decision.events] == ["new_message", "ai_requested"]
    spawns = [e for e in decision.effects if isinstance(e, Spawn)]
    assert len(spawns) == 1
    request = spawns[0].fn.args[0]
    assert request.question == "Why is suction low?"
    assert request.equipment.manufacturer == "Carrier" and request.equipment.model == "24ACC6"
    assert [m.text for m in request.history] == ["suction_pressure: 52 psi"]
    assert decision.alarm is not None and decision.alarm.timestamp() == pytest.approx(d.now - 1 + 35)
    request_id = d.state.ai.request_id
    with pytest.raises(AiBusy):
        d.run({"type": "post_message", "text": "and now?", "ask_ai": True}, alice)
    # Without ask_ai the conversation goes on.
    d.run({"type": "post_message", "text": "checking the filter"}, alice)
    # Deltas are ephemeral broadcasts; the answer is one durable message.
    delta = d.run({"type": "ai_delta", "request_id": request_id, "delta": "Low ", "index": 0})
    assert delta.events == [] and delta.broadcasts[0]["type"] == "ai_delta"
    citations = [{"n": 1, "source": "Carrier 24ACC6 Service Manual", "page": 42, "document_id": "d1"}]
    answer = d.run({"type": "ai_answer", "request_id": request_id, "text": "Low charge [1].", "citations": citations, "usage": {"output_tokens": 4}})
    message = answer.events[0]["message"]
    assert message["sender_id"] == "ai" and message["role"] == "assistant" and message["kind"] == "ai"
    assert message["citations"] == citations and message["reply_to"] == request_id
    assert answer.alarm is None and d.state.ai is None
    # Late or foreign reports change nothing; people cannot send them.
    assert d.run({"type": "ai_answer", "request_id": request_id, "text": "again"}).events == []
    with pytest.raises(Forbidden):
        d.run({"type": "ai_answer", "request_id": request_id, "text": "fake"}, alice)


def test_a_failed_or_lost_ai_answer_ends_in_a_visible_error_message() -> None:
    d, alice, _ = _session(SessionLimits(ai_timeout_s=10, ai_grace_s=5))
    d.run({"type": "post_message", "text": "q", "ask_ai": True}, alice)
    failed = d.run({"type": "ai_failed", "request_id": d.state.ai.request_id, "reason": "no answer within 10 s"})
    assert failed.events[0]["message"]["kind"] == "ai_error"
    assert "no answer within 10 s" in failed.events[0]["message"]["text"]
    assert d.state.ai is None
    # Lost (process died): the alarm ends it once the deadline passed.
    d.run({"type": "post_message", "text": "q2", "ask_ai": True}, alice)
    early = d.on_alarm()
    assert early.events == [] and early.alarm is not None
    d.now += 60
    late = d.on_alarm()
    assert late.events[0]["message"]["kind"] == "ai_error" and "interrupted" in late.events[0]["message"]["text"]
    assert d.state.ai is None and late.alarm is None


def test_unknown_commands_are_refused() -> None:
    d, alice, _ = _session()
    with pytest.raises(InvalidInput, match="unknown command"):
        d.run({"type": "teleport"}, alice)
    with pytest.raises(NotFound):
        Driver(DiagnosticSession(), str(uuid.uuid4())).run({"type": "post_message", "text": "x"}, alice)


def test_snapshot_round_trip() -> None:
    import msgpack

    d, alice, _ = _session()
    bob = _invite(d, alice)
    d.run({"type": "connect", "device": "a1", "live": ["a1"]}, alice, subscriber_id=5)
    d.run({"type": "post_message", "text": "q", "ask_ai": True, "client_id": "x"}, bob)
    behavior = d.behavior
    packed = msgpack.packb(behavior.encode_state(d.state), use_bin_type=True)
    restored = behavior.decode_state(1, msgpack.unpackb(packed, raw=False, strict_map_key=False))
    assert restored == d.state
