"""TenantDashboard: one actor per tenant (address ``("dashboard", <tenant uuid>)``).

Theory of operation
-------------------
Every dashboard socket of a tenant attaches to this actor.  Its state is what
a dashboard shows: each printer's latest status, each hub's status and each
active print job.  A new connection gets all of it as one ``snapshot`` frame
(the actor's state frame), then live ``printer_status``, ``job_update``,
``hub_status`` and ``alert`` frames, each carrying ``(epoch, offset)`` so a
reconnecting dashboard may ask for ``since=<offset>``.

Where updates come from: HubConnection actors ``Tell`` this actor after their
own turn is durable.  A tell that found the mailbox full is retried in the
background and may therefore overtake a later one; each update carries
``v = [hub_id, hub offset]`` and an older ``v`` from the same hub is ignored,
so the latest state always wins.  The catalog (which printers and hubs the
tenant has at all) comes from Postgres: the socket handler reads it and asks
``sync_catalog`` before attaching, and the actor turns the difference into
events.

Slow dashboards: the kind's slow-consumer policy is ``coalesce`` and
:meth:`TenantDashboard.coalesce_key` keys status frames by printer (and hub,
and job), so a connection that falls behind gets the latest state of each
printer instead of an ever longer queue.  Per-connection printer filters
(``subscribe``/``unsubscribe``) live on the connection's Subscriber, see
:func:`install_printer_filter`.
"""

from __future__ import annotations

from typing import Any

from ensemble.actors._behavior import Behavior, Decision, Event, TurnMeta
from ensemble.actors._frames import OutboundFrame
from ensemble.actors._subscriber import Subscriber
from ensemble.errors import InvalidInput

__all__ = ["TenantDashboard", "DASHBOARD_KIND", "PrinterFilter", "install_printer_filter", "newer"]

DASHBOARD_KIND = "dashboard"
TERMINAL_JOBS = frozenset({"completed", "failed", "cancelled"})

State = dict[str, Any]
Version = list[Any] | None  # [hub_id, offset]


def newer(current: Version, candidate: Version) -> bool:
    """Does an update stamped ``candidate`` replace one stamped ``current``?"""
    if candidate is None or current is None or current[0] != candidate[0]:
        return True
    return bool(candidate[1] >= current[1])


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "v" and v is not None}


class TenantDashboard(Behavior[State]):
    kind = DASHBOARD_KIND
    snapshot_version = 1
    slow_consumer_policy = "coalesce"

    def initial_state(self, key: str) -> State:
        return {"tenant_id": key, "printers": {}, "hubs": {}, "jobs": {}, "alerts": 0}

    # -- decide -------------------------------------------------------------------

    def decide(self, state: State, command: dict[str, Any], meta: TurnMeta) -> Decision:
        kind = command.get("type")
        v = command.get("v")
        if kind == "printer_status":
            printer = command["printer"]
            current = state["printers"].get(printer["printer_id"])
            if current is not None and not newer(current.get("v"), v):
                return Decision()
            name = printer.get("name") or (current or {}).get("name")
            return Decision(events=[{"type": "printer_updated", "printer": {**printer, "name": name, "v": v}}])
        if kind == "job_update":
            job = command["job"]
            current = state["jobs"].get(job["job_id"])
            if current is not None and not newer(current.get("v"), v):
                return Decision()
            return Decision(events=[{"type": "job_updated", "job": {**job, "v": v}}])
        if kind == "hub_status":
            hub = command["hub"]
            current = state["hubs"].get(hub["hub_id"])
            if current is not None and not newer(current.get("v"), v):
                return Decision()
            return Decision(events=[{"type": "hub_updated", "hub": {**hub, "v": v}}])
        if kind == "hub_removed":
            return Decision(events=self._hub_removed(state, command["hub_id"], v))
        if kind == "alert":
            return Decision(events=[{"type": "alert_raised", "alert": command["alert"]}])
        if kind == "sync_catalog":
            return Decision(events=self._sync(state, command["catalog"]), reply=True)
        if kind == "check_printers":
            ids = command.get("printer_ids") or []
            return Decision(reply={"unknown": [p for p in ids if p not in state["printers"]]})
        if kind == "describe":
            return Decision(reply=self.state_frame(state))
        raise InvalidInput(f"unknown dashboard command {kind!r}")

    def _hub_removed(self, state: State, hub_id: str, v: Version) -> list[Event]:
        events: list[Event] = []
        for printer in state["printers"].values():
            if printer.get("hub_id") == hub_id:
                detached = {k: val for k, val in printer.items() if k not in ("hub_id", "job_id", "progress")}
                events.append({"type": "printer_updated", "printer": {**detached, "status": "offline", "v": None}})
        if hub_id in state["hubs"]:
            events.append({"type": "hub_removed", "hub_id": hub_id})
        return events

    def _sync(self, state: State, catalog: dict[str, Any]) -> list[Event]:
        """Events that make the state match the tenant's catalog in Postgres."""
        events: list[Event] = []
        db_printers = {p["printer_id"]: p for p in catalog.get("printers", [])}
        for printer_id, printer in db_printers.items():
            current = state["printers"].get(printer_id)
            if current is None:
                events.append({"type": "printer_updated", "printer": {**printer, "v": None}})
            elif current.get("name") != printer.get("name") or current.get("hub_id") != printer.get("hub_id"):
                merged = {**current, "name": printer.get("name"), "hub_id": printer.get("hub_id")}
                if merged["hub_id"] is None:
                    merged["status"] = "offline"
                events.append({"type": "printer_updated", "printer": merged})
        for printer_id in state["printers"]:
            if printer_id not in db_printers:
                events.append({"type": "printer_removed", "printer_id": printer_id})
        db_hubs = {h["hub_id"]: h for h in catalog.get("hubs", [])}
        for hub_id, hub in db_hubs.items():
            current = state["hubs"].get(hub_id)
            if current is None:
                events.append({"type": "hub_updated", "hub": {**hub, "v": None}})
            elif current.get("name") != hub.get("name") or current.get("printer_count") != hub.get("printer_count"):
                events.append({"type": "hub_updated", "hub": {**current, "name": hub.get("name"),
                                                               "printer_count": hub.get("printer_count")}})
        for hub_id in state["hubs"]:
            if hub_id not in db_hubs:
                events.append({"type": "hub_removed", "hub_id": hub_id})
        db_jobs = {j["job_id"]: j for j in catalog.get("jobs", [])}
        for job_id, job in db_jobs.items():
            current = state["jobs"].get(job_id)
            if current is None and job["status"] in TERMINAL_JOBS:
                continue  # finished before we heard of it: nothing to show
            if current is None or newer(current.get("v"), job.get("v")) and _strip(current) != _strip(job):
                events.append({"type": "job_updated", "job": job})
        for job_id in state["jobs"]:
            if job_id not in db_jobs:
                events.append({"type": "job_removed", "job_id": job_id})
        return events

    # -- apply ----------------------------------------------------------------------

    def tenant_of(self, key: str, state: State) -> str | None:
        return key  # one dashboard per tenant, keyed by the tenant id

    def apply(self, state: State, event: Event) -> State:
        kind = event["type"]
        if kind == "printer_updated":
            printer = event["printer"]
            return {**state, "printers": {**state["printers"], printer["printer_id"]: printer}}
        if kind == "printer_removed":
            return {**state, "printers": {k: v for k, v in state["printers"].items() if k != event["printer_id"]}}
        if kind == "hub_updated":
            hub = event["hub"]
            return {**state, "hubs": {**state["hubs"], hub["hub_id"]: hub}}
        if kind == "hub_removed":
            return {**state, "hubs": {k: v for k, v in state["hubs"].items() if k != event["hub_id"]}}
        if kind == "job_updated":
            job = event["job"]
            active = {k: v for k, v in state["jobs"].items() if k != job["job_id"]}
            if job["status"] not in TERMINAL_JOBS:
                active[job["job_id"]] = job
            return {**state, "jobs": active}
        if kind == "job_removed":
            return {**state, "jobs": {k: v for k, v in state["jobs"].items() if k != event["job_id"]}}
        if kind == "alert_raised":
            return {**state, "alerts": state["alerts"] + 1}
        return state

    # -- what subscribers see -------------------------------------------------------------

    def state_frame(self, state: State) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "printers": [_strip(p) for p in state["printers"].values()],
            "jobs": [_strip(j) for j in state["jobs"].values()],
            "hubs": [_strip(h) for h in state["hubs"].values()],
        }

    def event_frame(self, event: Event) -> dict[str, Any] | None:
        kind = event["type"]
        if kind == "printer_updated":
            return {"type": "printer_status", **_strip(event["printer"])}
        if kind == "job_updated":
            return {"type": "job_update", **_strip(event["job"])}
        if kind == "hub_updated":
            return {"type": "hub_status", **_strip(event["hub"])}
        if kind == "hub_removed":
            return {"type": "hub_status", "hub_id": event["hub_id"], "is_online": False, "printer_count": 0}
        if kind == "alert_raised":
            return {"type": "alert", **event["alert"]}
        return None

    def coalesce_key(self, frame: dict[str, Any]) -> Any:
        kind = frame.get("type")
        if kind == "printer_status":
            return ("printer", frame.get("printer_id"))
        if kind == "hub_status":
            return ("hub", frame.get("hub_id"))
        if kind == "job_update":
            return ("job", frame.get("job_id"))
        return None


class PrinterFilter:
    """Which printers one dashboard connection follows (None: all of them)."""

    def __init__(self) -> None:
        self.printers: set[str] | None = None

    def subscribe(self, printers: list[str] | None) -> None:
        if printers is None:
            self.printers = None
        elif self.printers is not None:
            self.printers |= set(printers)
        else:
            self.printers = set(printers)

    def unsubscribe(self, printers: list[str] | None, every: list[str]) -> None:
        if printers is None:
            self.printers = set()
            return
        current = set(every) if self.printers is None else self.printers
        self.printers = current - set(printers)

    def allows(self, printer_id: str) -> bool:
        return self.printers is None or printer_id in self.printers

    def accepts(self, frame: OutboundFrame) -> bool:
        printer_id = frame.message.get("printer_id")
        return printer_id is None or self.allows(str(printer_id))


def install_printer_filter(subscriber: Subscriber) -> PrinterFilter:
    """Make ``subscriber`` deliver only frames of the printers it follows.

    Frames without a ``printer_id`` (hub status, hub alerts, the snapshot)
    always pass.
    """
    chooser = PrinterFilter()
    subscriber.accepts = chooser.accepts  # type: ignore[method-assign]
    return chooser
