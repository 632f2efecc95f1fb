"""A tiny example actor: a chat room with a counter.

Used by the runtime's tests and benchmarks, and as the smallest complete
example of a behavior: pure ``decide`` and ``apply``, idempotent sends by
client id, an alarm, and a deliberate bug to prove failure isolation.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ensemble.actors._behavior import Behavior, Decision, Event, TurnMeta
from ensemble.errors import InvalidInput

__all__ = ["EchoRoom"]

_MAX_SEEN = 1000  # client ids remembered for de-duplication


class EchoRoom(Behavior[dict[str, Any]]):
    kind = "room"
    snapshot_version = 2

    def initial_state(self, key: str) -> dict[str, Any]:
        return {"count": 0, "messages": 0, "seen": {}, "alarms": 0}

    def decide(self, state: dict[str, Any], command: dict[str, Any], meta: TurnMeta) -> Decision:
        kind = command.get("type")
        if kind == "increment":
            by = command.get("by", 1)
            if not isinstance(by, int) or isinstance(by, bool):
                raise InvalidInput("by must be an integer")
            return Decision(events=[{"type": "incremented", "by": by}], reply=state["count"] + by)
        if kind == "say":
            text = command.get("text")
            client_id = command.get("client_id")
            if not isinstance(text, str) or not text:
                raise InvalidInput("text is required")
            if client_id is not None and client_id in state["seen"]:
                # A retry: no new event, the original offset back.
                return Decision(reply={"offset": state["seen"][client_id], "duplicate": True})
            event = {"type": "said", "text": text, "client_id": client_id, "at": meta.next_offset}
            return Decision(events=[event], reply={"offset": meta.next_offset, "duplicate": False})
        if kind == "typing":
            return Decision(broadcasts=[{"type": "typing", "who": command.get("who")}])
        if kind == "get":
            return Decision(reply={"count": state["count"], "messages": state["messages"]})
        if kind == "set_alarm":
            return Decision(alarm=datetime.fromtimestamp(float(command["at"]), timezone.utc), reply=True)
        if kind == "delete_alarm":
            return Decision(alarm=None, reply=True)
        if kind == "bug":
            raise RuntimeError("deliberate bug")
        if kind == "bug_in_apply":
            return Decision(events=[{"type": "poison"}])
        raise InvalidInput(f"unknown command {kind!r}")

    def apply(self, state: dict[str, Any], event: Event) -> dict[str, Any]:
        kind = event["type"]
        if kind == "incremented":
            return {**state, "count": state["count"] + event["by"]}
        if kind == "said":
            seen = dict(state["seen"])
            n = state["messages"] + 1
            if event.get("client_id") is not None:
                seen[event["client_id"]] = event["at"]
                if len(seen) > _MAX_SEEN:
                    seen.pop(next(iter(seen)))
            return {**state, "messages": n, "seen": seen}
        if kind == "alarm_fired":
            return {**state, "alarms": state["alarms"] + 1}
        if kind == "poison":
            raise RuntimeError("deliberate bug in apply")
        return state

    def on_alarm(self, state: dict[str, Any], meta: TurnMeta) -> Decision:
        return Decision(events=[{"type": "alarm_fired"}], alarm=None)

    def decode_state(self, version: int, data: Any) -> dict[str, Any]:
        if version == 1:
            # Version 1 had no "alarms" counter and called "messages" "said".
            return {"count": data["count"], "messages": data.get("said", 0), "seen": data.get("seen", {}), "alarms": 0}
        return super().decode_state(version, data)

    def state_frame(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"type": "room_state", "count": state["count"], "messages": state["messages"]}
