"""HubConnection: one actor per hub (address ``("hub", <hub uuid>)``).

Theory of operation
-------------------
The actor is the cloud's memory of one hub: is it online, when was it last
heard from, what is the normalized state of each printer behind it, which
print jobs are running on those printers, and which commands are waiting
for the hub's acknowledgement.  ``decide`` and ``apply`` are pure; the hub
socket handler (``gateway/sockets/hubs.py``) and the REST routes feed it
commands, and it answers with events plus effects that leave only once the
events are durable (the runtime's output gate).

*Connection.*  The socket handler verifies the hub's HMAC hello, then asks
``hub_connect`` with the hub's facts from Postgres (tenant, printers) and a
connection token ``conn``.  Only messages carrying the current ``conn`` are
heeded, so a half-dead older socket can never interleave with a new one.
``hub_ready`` (after the socket attached as a subscriber) re-sends every
pending command, in order.  ``hub_disconnect`` marks the hub offline at once
(its printers become ``offline``); the tenant is *alerted* only when the
silence lasts ``offline_after_s`` (the alarm).  The same alarm closes a
connected hub that stopped sending anything (no heartbeat).

*Store-and-forward de-duplication.*  The hub numbers its events (``seq``) and
re-sends every event the cloud has not acknowledged.  The agent sends in
``seq`` order over one connection at a time, so "new" is simply
``seq > last_seq``; every accepted event carries its ``seq`` and ``apply``
advances ``last_seq``, so the watermark is durable with the event itself.
The cloud answers ``seq_ack`` after the commit.  A new ``stream_id`` (a
reflashed hub) restarts the count.

*Commands.*  A command (print, pause, resume, stop) is an event
``command_queued`` with a ``command_id`` and an expiry; it is sent at once
when the hub is connected and re-sent after every reconnect until the hub's
``command_ack`` arrives (the hub de-duplicates by ``command_id``, so it runs
at most once on the device).  One that outlives ``command_ttl_s`` expires
with a clear failure on its job.  Unclaimed hubs get no commands.

*Jobs.*  Active jobs live here (the state machine is ``_jobs.py``); each
change is a ``job_changed`` event carrying the whole job, projected into
``print_jobs`` and told to the tenant's dashboard.  Terminal jobs leave the
state (the row keeps them).

*Tenancy.*  Data reaches a tenant only while the hub is claimed by it, and
only for printers that the tenant put behind this hub.  A released hub is
closed at once, its pending commands dropped and its active jobs failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from ensemble.actors._behavior import KEEP, Address, Behavior, Close, Decision, Event, Send, Spawn, Tell, TurnMeta
from ensemble.actors.hubs import _jobs as jobs
from ensemble.actors.hubs._projection import project_hub_event
from ensemble.actors.hubs._views import blank_printer, dashboard_hub, dashboard_job, dashboard_printer, ms, normalize_report
from ensemble.errors import Conflict, InvalidInput, NotFound
from ensemble.hubs.protocol import TO_HUB, from_wire, to_wire

__all__ = ["HubConnection", "HUB_KIND", "DASHBOARD_KIND", "CLOSE_HUB_RELEASED", "CLOSE_HUB_REPLACED", "CLOSE_HUB_SILENT"]

HUB_KIND = "hub"
DASHBOARD_KIND = "dashboard"

CLOSE_HUB_REPLACED = 4409  # a newer connection of the same hub took over
CLOSE_HUB_RELEASED = 4403  # the tenant released (or a new tenant claimed) the hub
CLOSE_HUB_SILENT = 4408  # nothing heard for offline_after_s

_FACTS_RETRY_S = 30.0  # at most one background facts reload per this many seconds

State = dict[str, Any]
FactsLoader = Callable[[str], Awaitable[dict[str, Any]]]


def _dashboard(tenant_id: str) -> Address:
    return Address(DASHBOARD_KIND, tenant_id)


class HubConnection(Behavior[State]):
    kind = HUB_KIND
    snapshot_version = 1
    slow_consumer_policy = "disconnect"

    def __init__(
        self,
        *,
        offline_after_s: float = 300.0,
        command_ttl_s: float = 600.0,
        heartbeat_s: int = 30,
        load_facts: FactsLoader | None = None,
    ) -> None:
        self.offline_after_s = offline_after_s
        self.command_ttl_s = command_ttl_s
        self.heartbeat_s = heartbeat_s
        self.load_facts = load_facts

    # -- state -----------------------------------------------------------------

    def initial_state(self, key: str) -> State:
        return {
            "hub_id": key,
            "tenant_id": None,
            "name": None,
            "printers": {},
            "conn": None,
            "sub": None,
            "online": False,
            "ready": False,
            "last_seen": None,
            "offline_alerted": False,
            "stream_id": None,
            "last_seq": -1,
            "firmware": None,
            "hardware_revision": None,
            "local_ip": None,
            "rssi": None,
            "commands": {},
            "command_counter": 0,
            "jobs": {},
            "facts_requested_at": None,
        }

    def tenant_of(self, key: str, state: State) -> str | None:
        tenant = state.get("tenant_id")
        return str(tenant) if tenant is not None else None

    def apply(self, state: State, event: Event) -> State:
        kind = event["type"]
        s = dict(state)
        if "seq" in event:
            s["last_seq"] = event["seq"]
        if kind == "hub_connected":
            s.update(
                conn=event["conn"], sub=event["sub"], online=True, ready=False, last_seen=event["at"],
                offline_alerted=False, stream_id=event["stream_id"], firmware=event.get("firmware"),
                hardware_revision=event.get("hardware_revision"), local_ip=event.get("local_ip"),
            )
            if event["reset_seq"]:
                s["last_seq"] = -1
        elif kind == "hub_ready":
            s["ready"] = True
            s["commands"] = _mark_sent(state["commands"], event["sent"])
        elif kind == "hub_seen":
            s["last_seen"] = event["at"]
            if event.get("rssi") is not None:
                s["rssi"] = event["rssi"]
            if event.get("local_ip") is not None:
                s["local_ip"] = event["local_ip"]
        elif kind in ("hub_disconnected", "hub_silent"):
            s.update(conn=None, sub=None, online=False, ready=False)
        elif kind == "printers_offline":
            printers = dict(state["printers"])
            for printer in event["printers"]:
                if printer["printer_id"] in printers:
                    printers[printer["printer_id"]] = printer
            s["printers"] = printers
        elif kind == "hub_offline_alerted":
            s["offline_alerted"] = True
        elif kind == "hub_facts_changed":
            old = state["printers"]
            s["tenant_id"] = event["tenant_id"]
            s["name"] = event["name"]
            s["printers"] = {
                p["printer_id"]: {**old.get(p["printer_id"], blank_printer(p["printer_id"], p.get("name"))),
                                  "name": p.get("name")}
                for p in event["printers"]
            }
            s["facts_requested_at"] = None
        elif kind == "facts_requested":
            s["facts_requested_at"] = event["at"]
        elif kind == "printer_reported":
            report = event["printer"]
            printers = dict(state["printers"])
            if report["printer_id"] in printers:
                printers[report["printer_id"]] = {**printers[report["printer_id"]], **report}
            s["printers"] = printers
            s["last_seen"] = event["at"]
        elif kind in ("hub_reported", "transfer_progress"):
            s["last_seen"] = event["at"]
        elif kind == "command_queued":
            commands = dict(state["commands"])
            commands[event["command"]["command_id"]] = event["command"]
            s["commands"] = commands
            s["command_counter"] = state["command_counter"] + 1
        elif kind == "commands_sent":
            s["commands"] = _mark_sent(state["commands"], event["sent"])
        elif kind == "command_acked":
            s["last_seen"] = event["at"]
            if event["command_id"] in state["commands"]:
                s["commands"] = {k: v for k, v in state["commands"].items() if k != event["command_id"]}
        elif kind == "command_done":
            s["commands"] = {k: v for k, v in state["commands"].items() if k != event["command_id"]}
        elif kind == "job_changed":
            job = event["job"]
            active = dict(state["jobs"])
            if job["status"] in jobs.TERMINAL:
                active.pop(job["job_id"], None)
            else:
                active[job["job_id"]] = job
            s["jobs"] = active
        return s

    def _fold(self, state: State, events: list[Event]) -> State:
        for event in events:
            state = self.apply(state, event)
        return state

    # -- decide ------------------------------------------------------------------

    def decide(self, state: State, command: dict[str, Any], meta: TurnMeta) -> Decision:
        kind = command.get("type")
        handler = self._commands.get(str(kind))
        if handler is None:
            raise InvalidInput(f"unknown hub command {kind!r}")
        decision: Decision = handler(self, state, command, meta)
        return decision

    def _hub_connect(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        hello = cmd.get("hello") or {}
        turn = _Turn(self, state, meta)
        if state["conn"] is not None and state["conn"] != cmd["conn"] and state["sub"] is not None:
            turn.effects.append(Close(state["sub"], CLOSE_HUB_REPLACED, "replaced by a newer connection of this hub"))
        turn.facts(cmd.get("facts"))
        stream_id = hello.get("stream_id")
        turn.add(
            {
                "type": "hub_connected",
                "conn": cmd["conn"],
                "sub": cmd["sub"],
                "at": meta.now,
                "stream_id": stream_id,
                "reset_seq": stream_id != turn.state["stream_id"],
                "firmware": hello.get("firmware"),
                "hardware_revision": hello.get("hardware_revision"),
                "local_ip": hello.get("local_ip"),
            }
        )
        turn.tell_hub_status()
        s = turn.state
        turn.reply = {
            "offset": turn.last_offset,
            "last_seq": s["last_seq"],
            "claimed": s["tenant_id"] is not None,
            "tenant_id": s["tenant_id"],
            "heartbeat_s": self.heartbeat_s,
            "server_time": ms(meta.now),
        }
        return turn.decision()

    def _hub_ready(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        if state["conn"] is None or cmd.get("conn") != state["conn"]:
            return Decision(reply=False)
        turn = _Turn(self, state, meta)
        pending = _pending(state) if state["tenant_id"] is not None else []
        turn.add({"type": "hub_ready", "conn": cmd["conn"], "sent": [c["command_id"] for c in pending]})
        for c in pending:
            turn.effects.append(Send(state["sub"], c["frame"]))
        turn.reply = True
        return turn.decision()

    def _hub_disconnect(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        if cmd.get("conn") != state["conn"] or state["conn"] is None:
            return Decision()
        turn = _Turn(self, state, meta)
        turn.add({"type": "hub_disconnected", "conn": cmd["conn"], "at": meta.now, "reason": cmd.get("reason") or ""})
        turn.printers_offline()
        turn.tell_hub_status()
        return turn.decision()

    def _hub_facts(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        turn = _Turn(self, state, meta)
        turn.facts(cmd.get("facts"))
        turn.reply = {"tenant_id": turn.state["tenant_id"], "printers": sorted(turn.state["printers"])}
        return turn.decision()

    def _hub_message(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        if cmd.get("conn") != state["conn"] or state["conn"] is None:
            return Decision()  # a message from a replaced or closed connection
        message = cmd["message"]
        kind = message.get("type")
        turn = _Turn(self, state, meta)
        if kind == "heartbeat":
            turn.add({"type": "hub_seen", "at": meta.now, "rssi": message.get("wifi_rssi"),
                      "local_ip": message.get("local_ip"), "backlog": message.get("backlog", 0)})
            return turn.decision()
        seq = message.get("seq")
        if not isinstance(seq, int):
            return Decision()  # hello, ping, pong: nothing durable
        if seq <= state["last_seq"]:
            # A store-and-forward replay of something already durable.
            return Decision(effects=[Send(state["sub"], {"type": "seq_ack", "seq": state["last_seq"]})])
        if kind == "printer_status":
            turn.printer_report(seq, message)
        elif kind == "printer_disconnected":
            turn.printer_report(seq, {"printer_id": message["printer_id"], "status": "offline", "ts": message["ts"]})
        elif kind == "command_ack":
            turn.command_ack(seq, message)
        elif kind == "file_progress":
            turn.file_progress(seq, message)
        else:  # printer_connected, printer_list, printer_discovered
            turn.add({"type": "hub_reported", "seq": seq, "at": meta.now, "kind": kind})
        turn.effects.append(Send(state["sub"], {"type": "seq_ack", "seq": seq}))
        return turn.decision()

    def _start_job(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        turn = _Turn(self, state, meta)
        turn.facts(cmd.get("facts"))
        s = turn.state
        tenant_id = cmd["tenant_id"]
        if s["tenant_id"] is None or s["tenant_id"] != tenant_id:
            raise NotFound("no such hub in this tenant")
        spec = cmd["job"]
        printer_id = spec["printer_id"]
        printer = s["printers"].get(printer_id)
        if printer is None:
            raise NotFound("this printer is not behind the hub", details={"printer_id": printer_id})
        for job in s["jobs"].values():
            if job["printer_id"] == printer_id:
                raise Conflict(
                    "the printer already has an active job",
                    details={"job_id": job["job_id"], "status": job["status"]},
                )
        if printer.get("status") in ("printing", "paused") and s["online"]:
            raise Conflict("the printer is busy with a job started elsewhere", details={"status": printer["status"]})
        if spec["job_id"] in s["jobs"]:
            raise Conflict("a job with this id exists")
        now_ms = ms(meta.now)
        job = jobs.new_job(
            job_id=spec["job_id"], tenant_id=tenant_id, printer_id=printer_id, hub_id=s["hub_id"],
            file_id=spec.get("file_id"), file_name=spec["file_name"], file_size=spec["file_size"],
            command_id=spec["command_id"], submitted_by=spec.get("submitted_by"), now_ms=now_ms,
        )
        frame = _command_frame({
            "type": "print_command", "command_id": spec["command_id"], "printer_id": printer_id,
            "job_id": spec["job_id"], "file_url": spec["file_url"], "file_name": spec["file_name"],
            "file_size": spec["file_size"], "sha256": spec["sha256"], "url_expires_at": spec.get("url_expires_at"),
        })
        turn.job(job, prev=None, reason="submitted")
        turn.queue_command(spec["command_id"], "print", spec["job_id"], printer_id, frame)
        turn.reply = job
        return turn.decision()

    def _job_control(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        turn = _Turn(self, state, meta)
        if state["tenant_id"] is None or state["tenant_id"] != cmd["tenant_id"]:
            raise NotFound("no such job")
        job = state["jobs"].get(cmd["job_id"])
        if job is None:
            raise Conflict("the job is no longer active", details={"job_id": cmd["job_id"]})
        action = cmd["action"]
        jobs.check_action(job["status"], action)
        command_id = cmd["command_id"]
        if action in ("pause", "resume"):
            frame = _command_frame({"type": "printer_command", "command_id": command_id,
                                    "printer_id": job["printer_id"], "action": action, "job_id": job["job_id"]})
            turn.queue_command(command_id, action, job["job_id"], job["printer_id"], frame)
            turn.reply = job
            return turn.decision()
        # cancel
        print_cmd = state["commands"].get(job["command_id"])
        now_ms = ms(meta.now)
        cancelled = jobs.advance(job, "cancelled", now_ms, failure_reason=cmd.get("reason") or "cancelled by a user")
        assert cancelled is not None  # check_action allowed it
        if print_cmd is not None and not print_cmd["sent"]:
            # The hub never saw the job: nothing to stop on the device.
            turn.add({"type": "command_done", "command_id": print_cmd["command_id"], "outcome": "dropped",
                      "at": meta.now})
        else:
            frame = _command_frame({"type": "printer_command", "command_id": command_id,
                                    "printer_id": job["printer_id"], "action": "stop", "job_id": job["job_id"]})
            turn.queue_command(command_id, "stop", job["job_id"], job["printer_id"], frame)
        turn.job(cancelled, prev=job["status"], reason="cancelled")
        turn.reply = cancelled
        return turn.decision()

    def _describe(self, state: State, cmd: dict[str, Any], meta: TurnMeta) -> Decision:
        return Decision(
            reply={
                "hub": dashboard_hub(state),
                "tenant_id": state["tenant_id"],
                "printers": [dashboard_printer(state["hub_id"], p) for p in state["printers"].values()],
                "jobs": list(state["jobs"].values()),
                "pending_commands": [
                    {k: c[k] for k in ("command_id", "kind", "job_id", "sent", "queued_at", "expires_at")}
                    for c in _pending(state)
                ],
                "last_seq": state["last_seq"],
            }
        )

    _commands: dict[str, Callable[..., Decision]] = {
        "hub_connect": _hub_connect,
        "hub_ready": _hub_ready,
        "hub_disconnect": _hub_disconnect,
        "hub_facts": _hub_facts,
        "hub_message": _hub_message,
        "start_job": _start_job,
        "job_control": _job_control,
        "describe": _describe,
    }

    # -- alarm -------------------------------------------------------------------

    def on_alarm(self, state: State, meta: TurnMeta) -> Decision:
        turn = _Turn(self, state, meta)
        for c in _pending(state):
            if c["expires_at"] <= meta.now:
                turn.expire_command(c)
        s = turn.state
        silent_for = None if s["last_seen"] is None else meta.now - s["last_seen"]
        if silent_for is not None and silent_for >= self.offline_after_s:
            if s["online"]:
                turn.add({"type": "hub_silent", "at": meta.now})
                if state["sub"] is not None:
                    turn.effects.append(Close(state["sub"], CLOSE_HUB_SILENT, "no message from the hub: reconnect"))
                turn.printers_offline()
                turn.tell_hub_status()
            if not turn.state["offline_alerted"]:
                turn.add({"type": "hub_offline_alerted", "at": meta.now})
                turn.alert(
                    "hub_offline", "warning",
                    f"hub {s.get('name') or s['hub_id']} has been offline for {int(silent_for // 60)} min",
                )
        return turn.decision(alarm_turn=True)

    def next_alarm(self, state: State) -> datetime | None:
        due = [c["expires_at"] for c in state["commands"].values()]
        if state["last_seen"] is not None and (state["online"] or not state["offline_alerted"]):
            due.append(state["last_seen"] + self.offline_after_s)
        if not due:
            return None
        return datetime.fromtimestamp(min(due), timezone.utc)

    # -- what leaves the actor -----------------------------------------------------

    def event_frame(self, event: Event) -> dict[str, Any] | None:
        # Nothing is broadcast to the hub socket: it gets only what a turn
        # addresses to it (Send), i.e. commands and seq_acks.
        return None

    def state_frame(self, state: State) -> dict[str, Any]:
        return {"type": "hub_state", "hub": dashboard_hub(state), "last_seq": state["last_seq"]}

    def project(self, event: Event, offset: int, address: Address) -> list[tuple[str, tuple[Any, ...]]]:
        return project_hub_event(address.key, event, offset)


def _command_frame(fields: dict[str, Any]) -> dict[str, Any]:
    """A cloud -> hub command, validated by the shared protocol (``InvalidInput`` if it is not one)."""
    wire = {k: v for k, v in fields.items() if v is not None}
    return to_wire(from_wire(wire, accept=TO_HUB))


def _pending(state: State) -> list[dict[str, Any]]:
    return sorted(state["commands"].values(), key=lambda c: c["n"])


def _mark_sent(commands: dict[str, Any], sent: list[str]) -> dict[str, Any]:
    if not sent:
        return commands
    out = dict(commands)
    for command_id in sent:
        if command_id in out:
            out[command_id] = {**out[command_id], "sent": True}
    return out


class _Turn:
    """Accumulates one turn's events (folding them as it goes) and effects."""

    def __init__(self, behavior: HubConnection, state: State, meta: TurnMeta) -> None:
        self.b = behavior
        self.start = state
        self.state = state
        self.meta = meta
        self.events: list[Event] = []
        self.effects: list[Any] = []
        self.reply: Any = None

    @property
    def last_offset(self) -> int:
        return self.meta.next_offset + len(self.events) - 1

    @property
    def now_ms(self) -> int:
        return ms(self.meta.now)

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.state = self.b.apply(self.state, event)

    def decision(self, *, alarm_turn: bool = False) -> Decision:
        alarm: Any = self.b.next_alarm(self.state)
        if not alarm_turn and not self.events and self.b.next_alarm(self.start) == alarm:
            alarm = KEEP  # nothing changed: no alarm write
        return Decision(events=self.events, effects=self.effects, reply=self.reply, alarm=alarm)

    # -- telling the tenant ---------------------------------------------------------

    def _tell(self, command: dict[str, Any], tenant_id: str | None = None) -> None:
        tenant = tenant_id or self.state["tenant_id"]
        if tenant is None:
            return
        self.effects.append(Tell(_dashboard(tenant), {**command, "v": [self.state["hub_id"], self.last_offset]}))

    def tell_hub_status(self) -> None:
        self._tell({"type": "hub_status", "hub": dashboard_hub(self.state)})

    def tell_printer(self, printer: dict[str, Any]) -> None:
        self._tell({"type": "printer_status", "printer": dashboard_printer(self.state["hub_id"], printer)})

    def alert(self, kind: str, severity: str, message: str, **refs: Any) -> None:
        alert = {
            "alert_id": f"{self.state['hub_id']}:{self.last_offset}:{kind}",
            "kind": kind,
            "severity": severity,
            "message": message,
            "ts": self.now_ms,
            "hub_id": self.state["hub_id"],
            **{k: v for k, v in refs.items() if v is not None},
        }
        self._tell({"type": "alert", "alert": alert})

    # -- facts (tenant, printers) -----------------------------------------------------

    def facts(self, facts: dict[str, Any] | None) -> None:
        if facts is None:
            return
        s = self.state
        tenant_id = facts.get("tenant_id")
        printers = [{"printer_id": str(p["printer_id"]), "name": p.get("name")} for p in facts.get("printers", [])]
        if tenant_id is None:
            printers = []  # an unclaimed hub has no printers of anyone's
        current = [{"printer_id": pid, "name": p.get("name")} for pid, p in s["printers"].items()]
        if (tenant_id == s["tenant_id"] and facts.get("name") == s["name"]
                and sorted(printers, key=lambda p: p["printer_id"]) == sorted(current, key=lambda p: p["printer_id"])):
            return
        old_tenant = s["tenant_id"]
        kept = {p["printer_id"] for p in printers} if tenant_id == old_tenant else set()
        # Jobs and commands that no longer belong here end now.
        for job in list(s["jobs"].values()):
            if job["printer_id"] not in kept:
                reason = "hub released by the tenant" if tenant_id != old_tenant else "printer removed from the hub"
                self.fail_job(job, reason)
        for c in _pending(self.state):
            if c["printer_id"] not in kept:
                self.add({"type": "command_done", "command_id": c["command_id"], "outcome": "dropped",
                          "at": self.meta.now})
        self.add({"type": "hub_facts_changed", "tenant_id": tenant_id, "name": facts.get("name"),
                  "printers": printers, "prev_tenant": old_tenant, "at": self.meta.now})
        if old_tenant is not None and old_tenant != tenant_id:
            self._tell({"type": "hub_removed", "hub_id": s["hub_id"], "printer_ids": sorted(s["printers"])},
                       tenant_id=old_tenant)
            if s["sub"] is not None:
                self.effects.append(Close(s["sub"], CLOSE_HUB_RELEASED, "hub released: reconnect"))
        if tenant_id is not None:
            self.tell_hub_status()
            for printer in self.state["printers"].values():
                self.tell_printer(printer)

    def request_facts(self) -> None:
        loader = self.b.load_facts
        last = self.state["facts_requested_at"]
        if loader is None or (last is not None and self.meta.now - last < _FACTS_RETRY_S):
            return
        hub_id = self.state["hub_id"]
        self.add({"type": "facts_requested", "at": self.meta.now})

        async def reload(handle: Any) -> None:
            facts = await loader(hub_id)
            await handle.tell({"type": "hub_facts", "facts": facts})

        self.effects.append(Spawn(reload, "reload_facts"))

    # -- hub events ---------------------------------------------------------------------

    def printer_report(self, seq: int, message: dict[str, Any]) -> None:
        s = self.state
        printer_id = message["printer_id"]
        if s["tenant_id"] is None or printer_id not in s["printers"]:
            reason = "hub is not claimed" if s["tenant_id"] is None else "printer is not behind this hub"
            self.add({"type": "hub_reported", "seq": seq, "at": self.meta.now, "kind": "printer_status",
                      "ignored": reason})
            if s["tenant_id"] is not None:
                self.request_facts()  # maybe the tenant just added it
            return
        before = s["printers"][printer_id]
        report = {"printer_id": printer_id, **normalize_report(message)}
        self.add({"type": "printer_reported", "seq": seq, "at": self.meta.now, "tenant_id": s["tenant_id"],
                  "printer": report})
        after = self.state["printers"][printer_id]
        self.tell_printer(after)
        if after.get("status") == "error" and before.get("status") != "error":
            self.alert("printer_error", "critical",
                       f"printer {after.get('name') or printer_id} reports an error"
                       + (f" ({after['error_code']})" if after.get("error_code") else ""),
                       printer_id=printer_id, job_id=after.get("job_id"))
        job_id = report.get("job_id")
        if job_id is not None:
            job = self.state["jobs"].get(job_id)
            if job is not None and job["printer_id"] == printer_id:
                changed = jobs.on_status_report(job, report, self.now_ms)
                if changed is not None:
                    self.job(changed, prev=job["status"], reason=f"printer reported {report.get('status')}")

    def command_ack(self, seq: int, message: dict[str, Any]) -> None:
        command = self.state["commands"].get(message["command_id"])
        self.add({"type": "command_acked", "seq": seq, "at": self.meta.now, "command_id": message["command_id"],
                  "success": bool(message["success"]), "error": message.get("error"), "known": command is not None})
        if command is None or command.get("job_id") is None:
            return
        job = self.state["jobs"].get(command["job_id"])
        if job is None:
            return
        success, error = bool(message["success"]), message.get("error")
        changed = None
        if command["kind"] == "print":
            changed = jobs.on_print_ack(job, success, error, self.now_ms)
        elif success and command["kind"] == "pause":
            changed = jobs.advance(job, "paused", self.now_ms)
        elif success and command["kind"] == "resume":
            changed = jobs.advance(job, "printing", self.now_ms)
        elif not success:
            self.alert("command_failed", "warning", f"{command['kind']} failed: {error or 'no reason given'}",
                       printer_id=command.get("printer_id"), job_id=command["job_id"])
        if changed is not None:
            self.job(changed, prev=job["status"], reason=f"{command['kind']} acknowledged")

    def file_progress(self, seq: int, message: dict[str, Any]) -> None:
        self.add({"type": "transfer_progress", "seq": seq, "at": self.meta.now, "job_id": message["job_id"],
                  "phase": message.get("phase"), "bytes_sent": message["bytes_sent"],
                  "bytes_total": message["bytes_total"]})
        job = self.state["jobs"].get(message["job_id"])
        if job is None:
            return
        changed = jobs.on_file_progress(job, message["bytes_sent"], message["bytes_total"], self.now_ms)
        if changed is not None:
            self.job(changed, prev=job["status"], reason=f"file {message.get('phase') or 'transfer'}")

    def printers_offline(self) -> None:
        s = self.state
        if not s["printers"] or s["tenant_id"] is None:
            return
        offline = [{**p, "status": "offline", "ts": self.now_ms} for p in s["printers"].values()]
        self.add({"type": "printers_offline", "at": self.meta.now, "tenant_id": s["tenant_id"], "printers": offline})
        for printer in offline:
            self.tell_printer(printer)

    # -- jobs and commands ---------------------------------------------------------------

    def job(self, job: dict[str, Any], *, prev: str | None, reason: str) -> None:
        self.add({"type": "job_changed", "job": job, "prev": prev, "reason": reason, "at": self.meta.now})
        self._tell({"type": "job_update", "job": dashboard_job(job)})
        if job["status"] == "failed":
            self.alert("job_failed", "warning", f"print job {job['file_name']} failed: {job.get('failure_reason')}",
                       printer_id=job["printer_id"], job_id=job["job_id"])

    def fail_job(self, job: dict[str, Any], reason: str) -> None:
        failed = jobs.advance(job, "failed", self.now_ms, failure_reason=reason)
        if failed is not None:
            self.job(failed, prev=job["status"], reason=reason)

    def queue_command(self, command_id: str, kind: str, job_id: str | None, printer_id: str,
                      frame: dict[str, Any]) -> None:
        if command_id in self.state["commands"]:
            raise Conflict("a command with this id is pending")
        send_now = self.state["ready"] and self.state["sub"] is not None
        record = {
            "command_id": command_id, "kind": kind, "job_id": job_id, "printer_id": printer_id, "frame": frame,
            "queued_at": self.meta.now, "expires_at": self.meta.now + self.b.command_ttl_s, "sent": send_now,
            "n": self.state["command_counter"],
        }
        self.add({"type": "command_queued", "command": record})
        if send_now:
            self.effects.append(Send(self.state["sub"], frame))

    def expire_command(self, command: dict[str, Any]) -> None:
        self.add({"type": "command_done", "command_id": command["command_id"], "outcome": "expired",
                  "at": self.meta.now})
        ttl = int(self.b.command_ttl_s)
        job = self.state["jobs"].get(command["job_id"]) if command.get("job_id") else None
        if command["kind"] == "print" and job is not None:
            self.fail_job(job, f"the hub did not acknowledge the print command within {ttl} s")
        else:
            self.alert("command_expired", "warning",
                       f"{command['kind']} was not acknowledged by the hub within {ttl} s",
                       printer_id=command.get("printer_id"), job_id=command.get("job_id"))
