"""Property tests: replaying a DiagnosticSession's log gives the live state.

Pure (decide/apply) for many random histories, and through the real runtime
and Postgres (snapshots + log → reactivation) for fewer.
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.actors import Address, open_actor_system
from ensemble.actors.sessions import DiagnosticSession, SessionLimits
from ensemble.errors import EnsembleError
from ensemble.bridge import open_bridge
from ensemble.persistence.database import open_database
from tests.sessions._helpers import Caller, Driver, create_command

TENANT = str(uuid.UUID(int=1))
PEOPLE = [Caller(str(uuid.UUID(int=n)), TENANT, role) for n, role in ((10, "technician"), (11, "technician"), (12, "operator"))]
OUTSIDER = Caller(str(uuid.UUID(int=99)), str(uuid.UUID(int=2)))
DEVICES = ["d1", "d2", "d3", "d4"]

people = st.sampled_from([*PEOPLE, OUTSIDER])
client_ids = st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"]))
short_text = st.text(alphabet="ab \u00e9", min_size=0, max_size=6)

commands = st.one_of(
    st.builds(lambda p, t, c, ai: ({"type": "post_message", "text": t, "client_id": c, "ask_ai": ai}, p, None),
              people, short_text, client_ids, st.booleans()),
    st.builds(lambda p, v, c: ({"type": "post_reading", "kind": "temp", "value": v, "unit": "F", "client_id": c}, p, None),
              people, st.one_of(st.integers(-50, 200), st.just("bad")), client_ids),
    st.builds(lambda p, dev, live, sub: ({"type": "connect", "device": dev, "live": live}, p, sub),
              people, st.sampled_from(DEVICES), st.lists(st.sampled_from(DEVICES), max_size=4), st.integers(1, 9)),
    st.builds(lambda dev: ({"type": "disconnect", "device": dev}, None, None), st.sampled_from(DEVICES)),
    st.builds(lambda p, who: ({"type": "invite", "user": {"id": who.user_id, "name": "N", "member_role": who.role}}, p, None),
              people, st.sampled_from(PEOPLE)),
    st.builds(lambda p: ({"type": "leave"}, p, None), people),
    st.builds(lambda p: ({"type": "typing", "active": True}, p, None), people),
    st.builds(lambda p, s: ({"type": "complete", "summary": s}, p, None), people, short_text),
    st.builds(lambda ok: ({"type": "ai_answer", "request_id": "ai-?", "text": "answer"}, None, None) if not ok else
              ({"type": "__answer_pending__"}, None, None), st.booleans()),
    st.just(({"type": "__fail_pending__"}, None, None)),
    st.just(({"type": "__alarm__"}, None, None)),
)


def _resolve(d: Driver, command: dict[str, Any]) -> dict[str, Any] | None:
    """Placeholders that answer whatever AI request is pending at that moment."""
    if command["type"] in ("__answer_pending__", "__fail_pending__"):
        if d.state.ai is None:
            return None
        kind = "ai_answer" if command["type"] == "__answer_pending__" else "ai_failed"
        return {"type": kind, "request_id": d.state.ai.request_id, "text": "ok", "reason": "boom",
                "citations": [{"n": 1, "source": "S", "page": 1, "document_id": "x"}]}
    return command


def _drive(d: Driver, steps: list[tuple[dict[str, Any], Any, int | None]]) -> None:
    for raw, principal, sub in steps:
        if raw["type"] == "__alarm__":
            d.now += 100
            d.on_alarm()
            continue
        command = _resolve(d, raw)
        if command is None:
            continue
        try:
            d.run(command, principal, sub)
        except EnsembleError:
            pass


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(commands, max_size=40), recent=st.integers(1, 6))
def test_replaying_the_log_gives_the_live_state(steps: list[tuple[dict[str, Any], Any, int | None]], recent: int) -> None:
    d = Driver(DiagnosticSession(limits=SessionLimits(recent_messages=recent)), str(uuid.uuid4()))
    d.run(create_command(d.key, TENANT, PEOPLE[0]), PEOPLE[0])
    _drive(d, steps)
    assert d.replay() == d.state
    # Offsets are gap-free and what the events say they are.
    assert [e["offset"] for e in d.log] == list(range(1, len(d.log) + 1))
    assert d.state.last_offset == len(d.log)
    # Every client id of a sender is stored at most once.
    keys = [(e["message"]["sender_id"], e["message"]["client_id"]) for e in d.log
            if "message" in e and e["message"]["client_id"] is not None]
    assert len(keys) == len(set(keys))
    # Snapshots round-trip through msgpack.
    packed = msgpack.packb(d.behavior.encode_state(d.state), use_bin_type=True)
    assert d.behavior.decode_state(1, msgpack.unpackb(packed, raw=False, strict_map_key=False)) == d.state


@asynccontextmanager
async def _system(database_url: str, **options: Any):  # type: ignore[no-untyped-def]
    async with open_bridge() as bridge, open_database(bridge, database_url, min_size=1, max_size=2) as db:
        async with open_actor_system(db, [DiagnosticSession(limits=SessionLimits(ai_timeout_s=5))], **options) as system:
            yield system


_store_commands = st.lists(
    commands.filter(lambda c: c[0]["type"] not in ("__alarm__",) and not c[0].get("ask_ai")), min_size=1, max_size=20
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_store_commands, snapshot_every=st.integers(1, 8))
async def test_reactivation_from_the_store_gives_the_live_state(database_url: str, steps: Any, snapshot_every: int) -> None:
    key = str(uuid.uuid4())
    address = Address("session", key)
    async with _system(database_url, snapshot_every=snapshot_every) as system:
        await system.db.execute(
            "INSERT INTO tenants (id, name, slug) VALUES ($1, 'Property tests', 'property-tests') ON CONFLICT DO NOTHING",
            uuid.UUID(TENANT),
        )
        await system.ask(address, create_command(key, TENANT, PEOPLE[0]), principal=PEOPLE[0])
        for raw, principal, sub in steps:
            if raw["type"].startswith("__"):
                continue
            try:
                await system.ask(address, raw, principal=principal, subscriber_id=sub)
            except EnsembleError:
                pass
        live = (await system.inspect(address))["state"]
        rows = await system.db.fetchval("SELECT count(*) FROM diagnostic_messages WHERE session_id = $1", uuid.UUID(key))
    async with _system(database_url) as fresh:
        restored = (await fresh.inspect(address))["state"]
    assert restored == live
    # The projection holds exactly the messages the state counted.
    assert rows == live["message_count"]
