"""``DiagnosticSession``: one actor per diagnostic session (Address("session", <uuid>))."""

from __future__ import annotations

from typing import Any

from ensemble.actors._behavior import Address, Behavior, Command, Decision, Event, TurnMeta
from ensemble.actors.sessions import _decide, _state, _views
from ensemble.actors.sessions._ai import AiRunner
from ensemble.actors.sessions._limits import SessionLimits
from ensemble.actors.sessions._state import SessionState
from ensemble.knowledge.assistant import Assistant, EchoAssistant

__all__ = ["DiagnosticSession", "PROJECTED_EVENTS", "PROJECT_SQL"]

# The query tables (diagnostic_sessions, _participants, _messages) are written
# by one SQL function (migration 0004).  One statement text for every event
# matters: the group committer batches rows per statement text, so a single
# text keeps a session's projections in offset order within a batch.
PROJECT_SQL = "SELECT diagnostic_project($1::uuid, $2::jsonb)"
PROJECTED_EVENTS = frozenset({
    "session_created", "participant_joined", "participant_left",
    "new_message", "reading", "attachment_added", "session_completed",
})


class DiagnosticSession(Behavior[SessionState]):
    kind = "session"
    snapshot_version = 1
    slow_consumer_policy = "disconnect"

    def __init__(self, assistant: Assistant | None = None, limits: SessionLimits | None = None) -> None:
        self.limits = limits or SessionLimits()
        self.ai = AiRunner(assistant or EchoAssistant(), self.limits)
        self._ctx = _decide.Context(self.limits, self.ai)

    def initial_state(self, key: str) -> SessionState:
        return SessionState(key=key, recent_size=self.limits.recent_messages)

    def decide(self, state: SessionState, command: Command, meta: TurnMeta) -> Decision:
        return _decide.decide(self._ctx, state, command, meta)

    def tenant_of(self, key: str, state: SessionState) -> str | None:
        return state.info.tenant_id if state.info is not None else None

    def apply(self, state: SessionState, event: Event) -> SessionState:
        return _state.apply(state, event)

    def on_alarm(self, state: SessionState, meta: TurnMeta) -> Decision:
        return _decide.on_alarm(self._ctx, state, meta)

    def encode_state(self, state: SessionState) -> Any:
        return _state.encode_state(state)

    def decode_state(self, version: int, data: Any) -> SessionState:
        if version != self.snapshot_version:
            raise ValueError(f"session: no upgrade from snapshot version {version}")
        return _state.decode_state(data)

    def state_frame(self, state: SessionState) -> dict[str, Any]:
        return _views.state_frame(state)

    def event_frame(self, event: Event) -> dict[str, Any] | None:
        return _views.event_frame(event)

    def project(self, event: Event, offset: int, address: Address) -> list[tuple[str, tuple[Any, ...]]]:
        if event["type"] not in PROJECTED_EVENTS:
            return []
        return [(PROJECT_SQL, (address.key, {**event, "offset": offset}))]
