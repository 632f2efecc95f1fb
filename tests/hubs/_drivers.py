"""Drive the pure reducers by hand: decide, then apply, like the runtime does (no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

from ensemble.actors import Decision, TurnMeta
from ensemble.actors.dashboards import TenantDashboard
from ensemble.actors.hubs import HubConnection

HUB = "11111111-1111-4111-8111-111111111111"
TENANT = "22222222-2222-4222-8222-222222222222"
OTHER_TENANT = "33333333-3333-4333-8333-333333333333"
P1 = "44444444-4444-4444-8444-444444444444"
P2 = "55555555-5555-4555-8555-555555555555"
SHA = "ab" * 32


def facts(tenant: str | None = TENANT, printers: tuple[str, ...] = (P1, P2), name: str | None = "Bench") -> dict[str, Any]:
    return {"tenant_id": tenant, "name": name if tenant else None,
            "printers": [{"printer_id": p, "name": f"printer {p[:4]}"} for p in printers] if tenant else []}


class Driver:
    def __init__(self, behavior: Any, key: str) -> None:
        self.b = behavior
        self.state = behavior.initial_state(key)
        self.offset = 0
        self.now = 1_700_000_000.0
        self.events: list[dict[str, Any]] = []

    def meta(self, **kwargs: Any) -> TurnMeta:
        return TurnMeta(now=self.now, next_offset=self.offset + 1, **kwargs)

    def _take(self, decision: Decision) -> Decision:
        for event in decision.events:
            self.state = self.b.apply(self.state, event)
        self.offset += len(decision.events)
        self.events += decision.events
        return decision

    def send(self, command: dict[str, Any], **meta: Any) -> Decision:
        return self._take(self.b.decide(self.state, command, self.meta(**meta)))

    def alarm(self) -> Decision:
        return self._take(self.b.on_alarm(self.state, self.meta()))

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HubDriver(Driver):
    def __init__(self, **options: Any) -> None:
        options.setdefault("offline_after_s", 300.0)
        options.setdefault("command_ttl_s", 60.0)
        super().__init__(HubConnection(**options), HUB)
        self.seq = -1
        self.conn: str | None = None
        self.sub = 0

    def connect(self, *, stream: str = "stream-1", tenant: str | None = TENANT,
                printers: tuple[str, ...] = (P1, P2)) -> Decision:
        self.sub += 1
        self.conn = f"conn-{self.sub}"
        return self.send({"type": "hub_connect", "conn": self.conn, "sub": self.sub,
                          "facts": facts(tenant, printers), "hello": {"stream_id": stream, "firmware": "1.0"}})

    def ready(self) -> Decision:
        return self.send({"type": "hub_ready", "conn": self.conn})

    def disconnect(self) -> Decision:
        return self.send({"type": "hub_disconnect", "conn": self.conn, "reason": "test"})

    def hub(self, message: dict[str, Any], *, seq: int | None = None) -> Decision:
        if "seq" not in message and message["type"] not in ("heartbeat",):
            self.seq = self.seq + 1 if seq is None else seq
            message = {**message, "seq": self.seq}
        return self.send({"type": "hub_message", "conn": self.conn, "message": message})

    def status(self, printer: str = P1, status: str = "idle", **fields: Any) -> Decision:
        return self.hub({"type": "printer_status", "printer_id": printer, "status": status,
                         "ts": int(self.now * 1000), **fields})

    def ack(self, command_id: str, success: bool = True, error: str | None = None) -> Decision:
        message: dict[str, Any] = {"type": "command_ack", "command_id": command_id, "success": success,
                                   "ts": int(self.now * 1000)}
        if error:
            message["error"] = error
        return self.hub(message)

    def start_job(self, printer: str = P1, *, tenant: str = TENANT, job_id: str | None = None) -> Decision:
        job_id = job_id or str(uuid.uuid4())
        return self.send({
            "type": "start_job", "tenant_id": tenant,
            "job": {"job_id": job_id, "printer_id": printer, "file_id": str(uuid.uuid4()), "file_name": "part.gcode",
                    "file_size": 1000, "sha256": SHA, "file_url": "/api/v1/objects/x?expires=1&sig=y",
                    "command_id": str(uuid.uuid4()), "submitted_by": None},
        })

    def control(self, job_id: str, action: str, *, tenant: str = TENANT) -> Decision:
        return self.send({"type": "job_control", "tenant_id": tenant, "job_id": job_id, "action": action,
                          "command_id": str(uuid.uuid4())})


class DashboardDriver(Driver):
    def __init__(self) -> None:
        super().__init__(TenantDashboard(), TENANT)
