"""DiagnosticSession in the real runtime with Postgres: AI streaming, failures, projections, closes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from ensemble.actors import Address, Subscriber, SubscriberClosed, open_actor_system
from ensemble.actors.sessions import CLOSE_SESSION_COMPLETED, DiagnosticSession, SessionLimits
from ensemble.errors import EnsembleError, Unavailable
from ensemble.knowledge.assistant import AssistantChunk, AssistantRequest, EchoAssistant
from ensemble.persistence.database import Database
from tests.sessions._helpers import Caller, create_command


class FailingAssistant:
    async def answer(self, request: AssistantRequest) -> AsyncIterator[AssistantChunk]:
        yield AssistantChunk.piece("Let me ")
        raise Unavailable("the model is overloaded")


class HangingAssistant:
    async def answer(self, request: AssistantRequest) -> AsyncIterator[AssistantChunk]:
        yield AssistantChunk.piece("Thinking")
        await trio.sleep_forever()
        yield AssistantChunk.done("never")  # pragma: no cover


class BuggyAssistant:
    async def answer(self, request: AssistantRequest) -> AsyncIterator[AssistantChunk]:
        raise ZeroDivisionError("bug")
        yield AssistantChunk.done("never")  # pragma: no cover


async def _tenant(db: Database) -> str:
    tenant_id = uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)", tenant_id, f"t-{tenant_id.hex[:12]}")
    return str(tenant_id)


async def _frames_until(sub: Subscriber, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with trio.fail_after(timeout):
        while True:
            frame = (await sub.receive()).message
            frames.append(frame)
            if predicate(frame):
                return frames


async def _open_session(system: Any, db: Database) -> tuple[Address, Caller]:
    tenant_id = await _tenant(db)
    alice = Caller(str(uuid.uuid4()), tenant_id)
    key = str(uuid.uuid4())
    address = Address("session", key)
    await system.ask(address, create_command(key, tenant_id, alice), principal=alice)
    return address, alice


async def test_ai_answer_streams_as_deltas_then_one_message_with_citations(db: Database) -> None:
    behavior = DiagnosticSession(EchoAssistant(words_per_chunk=2))
    async with open_actor_system(db, [behavior]) as system:
        address, alice = await _open_session(system, db)
        sub = system.new_subscriber("session", principal=alice)
        await system.attach(address, sub)
        first = (await sub.receive()).message
        assert first["type"] == "session_state"
        reply = await system.ask(
            address, {"type": "post_message", "text": "Why no cooling?", "ask_ai": True}, principal=alice
        )
        frames = await _frames_until(sub, lambda f: f["type"] == "new_message" and f["message"]["sender_id"] == "ai")
        kinds = [f["type"] for f in frames]
        assert kinds[:2] == ["new_message", "ai_requested"]
        deltas = [f for f in frames if f["type"] == "ai_delta"]
        assert len(deltas) >= 2 and [d["index"] for d in deltas] == list(range(len(deltas)))
        answer = frames[-1]["message"]
        assert "".join(d["delta"] for d in deltas) == answer["text"]
        assert answer["citations"][0]["source"] == "Carrier 24ACC6 split system Service Manual"
        assert answer["reply_to"] == f"ai-{reply['offset']}" and answer["usage"]["model"] == "echo"
        # The alarm was cleared with the answer, and the projection has both messages.
        assert await db.fetchval("SELECT count(*) FROM actor_alarms WHERE key = $1", address.key) == 0
        rows = await db.fetch(
            'SELECT kind, role, sender_id FROM diagnostic_messages WHERE session_id = $1 ORDER BY "offset"',
            uuid.UUID(address.key),
        )
        assert [(r["kind"], r["role"], r["sender_id"]) for r in rows] == [("text", "user", alice.user_id), ("ai", "assistant", "ai")]


@pytest.mark.parametrize(
    "assistant, expected",
    [(FailingAssistant(), "the model is overloaded"), (HangingAssistant(), "no answer within 0.3 s"),
     (BuggyAssistant(), "internal error (ZeroDivisionError)")],
)
async def test_ai_failures_and_timeouts_end_in_an_ai_error_message(db: Database, assistant: Any, expected: str) -> None:
    behavior = DiagnosticSession(assistant, SessionLimits(ai_timeout_s=0.3))
    async with open_actor_system(db, [behavior]) as system:
        address, alice = await _open_session(system, db)
        sub = system.new_subscriber("session", principal=alice)
        await system.attach(address, sub)
        await system.ask(address, {"type": "post_message", "text": "q", "ask_ai": True}, principal=alice)
        frames = await _frames_until(sub, lambda f: f["type"] == "new_message" and f["message"]["sender_id"] == "ai")
        error = frames[-1]["message"]
        assert error["kind"] == "ai_error" and expected in error["text"]
        # The session can be asked again.
        await system.ask(address, {"type": "post_message", "text": "again?", "ask_ai": True}, principal=alice)


async def test_a_lost_answer_is_ended_by_the_durable_alarm_after_restart(db: Database) -> None:
    # Timeout 1.5 s + grace 0.5 s: the "process" dies well before its runner would report.
    limits = SessionLimits(ai_timeout_s=1.5, ai_grace_s=0.5)
    async with open_actor_system(db, [DiagnosticSession(HangingAssistant(), limits)]) as system:
        address, alice = await _open_session(system, db)
        await system.ask(address, {"type": "post_message", "text": "q", "ask_ai": True}, principal=alice)
    # Torn down with the answer in flight; a new "process" has only the log and the alarm.
    async with open_actor_system(db, [DiagnosticSession(EchoAssistant(), limits)], alarm_poll_s=0.05) as system:
        with trio.fail_after(10):
            while True:
                state = await system.ask(address, {"type": "get"}, principal=alice)
                if state["ai"] is None:
                    break
                await trio.sleep(0.05)
        last = state["messages"][-1]
        assert last["kind"] == "ai_error" and "interrupted" in last["text"]


async def test_completion_tells_every_socket_then_closes_it(db: Database) -> None:
    async with open_actor_system(db, [DiagnosticSession()]) as system:
        address, alice = await _open_session(system, db)
        subs = [system.new_subscriber("session", principal=alice) for _ in range(2)]
        for sub in subs:
            await system.attach(address, sub)
            await sub.receive()
        await system.ask(address, {"type": "complete", "summary": "done"}, principal=alice)
        for sub in subs:
            assert (await sub.receive()).message["type"] == "session_completed"
            with pytest.raises(SubscriberClosed) as info:
                await sub.receive()
            assert info.value.code == CLOSE_SESSION_COMPLETED
        row = await db.fetchrow("SELECT status, summary FROM diagnostic_sessions WHERE id = $1", uuid.UUID(address.key))
        assert dict(row) == {"status": "completed", "summary": "done"}
        with pytest.raises(EnsembleError) as err:
            await system.ask(address, {"type": "post_message", "text": "late"}, principal=alice)
        assert err.value.status == 409


async def test_projection_follows_join_leave_rejoin_in_one_commit_batch(db: Database) -> None:
    async with open_actor_system(db, [DiagnosticSession()]) as system:
        address, alice = await _open_session(system, db)
        bob = {"id": str(uuid.uuid4()), "name": "Bob", "member_role": "technician"}
        bob_caller = Caller(bob["id"], alice.tenant_id)
        # Fired without waiting, so the committer groups them.
        async with trio.open_nursery() as nursery:
            for command, who in (
                ({"type": "invite", "user": bob}, alice),
                ({"type": "leave"}, bob_caller),
                ({"type": "invite", "user": bob}, alice),
            ):
                system.tell_nowait(address, command, principal=who)
            nursery.start_soon(trio.sleep, 0)
        state = await system.ask(address, {"type": "get"}, principal=alice)
        assert {p["id"]: p["left_at"] for p in state["participants"]}[bob["id"]] is None
        row = await db.fetchrow(
            "SELECT role, left_at FROM diagnostic_participants WHERE session_id = $1 AND technician_id = $2",
            uuid.UUID(address.key), bob["id"],
        )
        assert row["role"] == "invited" and row["left_at"] is None
        assert await db.fetchval("SELECT is_collaborative FROM diagnostic_sessions WHERE id = $1", uuid.UUID(address.key))


class UnrulyAssistant:
    """Output no database would take as is: NUL, a lone surrogate, odd citations and usage."""

    async def answer(self, request: AssistantRequest) -> AsyncIterator[AssistantChunk]:
        yield AssistantChunk.piece("a\x00b")
        citations: Any = [{"n": 1, "source": "Manual\x00", "page": 3, "document_id": "d"}, {"n": "x"}, "junk"]
        yield AssistantChunk.done("a\x00b\ud800c", citations, {"tokens": 5, "weird": object(), "cost": float("nan")})


async def test_an_unruly_answer_is_stored_cleaned_not_lost(db: Database) -> None:
    async with open_actor_system(db, [DiagnosticSession(UnrulyAssistant())]) as system:
        address, alice = await _open_session(system, db)
        sub = system.new_subscriber("session", principal=alice)
        await system.attach(address, sub)
        await system.ask(address, {"type": "post_message", "text": "q", "ask_ai": True}, principal=alice)
        frames = await _frames_until(sub, lambda f: f["type"] == "new_message" and f["message"]["sender_id"] == "ai")
        answer = frames[-1]["message"]
        assert answer["kind"] == "ai" and answer["text"] == "ab?c"
        assert answer["citations"] == [{"n": 1, "source": "Manual", "page": 3, "document_id": "d"}]
        assert answer["usage"] == {"tokens": 5}
        body = await db.fetchval(
            "SELECT body FROM diagnostic_messages WHERE session_id = $1 AND sender_id = 'ai'", uuid.UUID(address.key)
        )
        assert body["text"] == "ab?c"
