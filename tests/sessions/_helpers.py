"""Pure helpers for driving a DiagnosticSession without the runtime."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ensemble.actors import Decision, TurnMeta
from ensemble.actors.sessions import DiagnosticSession, SessionState


@dataclass(frozen=True)
class Caller:
    """Quacks like the gateway's Principal."""

    user_id: str
    tenant_id: str
    role: str = "technician"


def new_ids() -> tuple[str, str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def create_command(session_id: str, tenant_id: str, creator: Caller, *, name: str = "Alice", **session: Any) -> dict[str, Any]:
    return {
        "type": "create",
        "session": {
            "id": session_id,
            "tenant_id": tenant_id,
            "client_id": session.pop("client_id", str(uuid.uuid4())),
            "mode": session.pop("mode", "guided"),
            "equipment": session.pop(
                "equipment", {"name": "Roof unit", "manufacturer": "Carrier", "model": "24ACC6", "type": "split system"}
            ),
            **session,
        },
        "creator": {"id": creator.user_id, "name": name, "member_role": creator.role},
    }


@dataclass
class Driver:
    """Runs commands through decide/apply like the runtime does, keeping the log."""

    behavior: DiagnosticSession
    key: str
    now: float = 1_700_000_000.0
    state: SessionState = field(init=False)
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.behavior.initial_state(self.key)

    def meta(self, principal: Any = None, subscriber_id: int | None = None) -> TurnMeta:
        return TurnMeta(now=self.now, principal=principal, subscriber_id=subscriber_id, next_offset=len(self.log) + 1)

    def run(self, command: dict[str, Any], principal: Any = None, subscriber_id: int | None = None) -> Decision:
        decision = self.behavior.decide(self.state, command, self.meta(principal, subscriber_id))
        state = self.state
        for event in decision.events:
            assert event["offset"] == len(self.log) + 1, "events must carry the runtime's offset"
            state = self.behavior.apply(state, event)
            self.log.append(event)
        self.state = state
        self.now += 1.0
        return decision

    def on_alarm(self) -> Decision:
        decision = self.behavior.on_alarm(self.state, self.meta())
        for event in decision.events:
            self.state = self.behavior.apply(self.state, event)
            self.log.append(event)
        return decision

    def replay(self) -> SessionState:
        state = self.behavior.initial_state(self.key)
        for event in self.log:
            state = self.behavior.apply(state, event)
        return state
