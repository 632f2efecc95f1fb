"""Admin view of live actors (a stub the actor runtime fills in).

``services.actors`` (the actor runtime) provides ``statistics()`` and
``inspect(Address(kind, key))``.  The tenant check comes first
and is conservative: a key is shown only when it provably belongs to the
caller's tenant (the tenant dashboard's key is the tenant id; a hub's key
is a hub of the tenant; other kinds ask the runtime's ``tenant_of(kind,
key)``), everything else is 404 like any other tenant's object.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any

from ensemble.actors import Address
from ensemble.errors import NotFound, Unavailable
from ensemble.gateway._routing import Api, Call, item
from ensemble.gateway._validation import Item, ResponseModel

api = Api("admin", tag="Admin")



class ActorsOut(ResponseModel):
    available: bool
    statistics: dict[str, Any] | None
    actors: list[dict[str, Any]]


class ActorOut(ResponseModel):
    kind: str
    key: str
    state: dict[str, Any] | None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _tenant_of(call: Call, kind: str, key: str) -> uuid.UUID | None:
    if kind == "dashboard":
        try:
            return uuid.UUID(key)
        except ValueError:
            return None
    if kind == "hub":
        try:
            hub_id = uuid.UUID(key)
        except ValueError:
            return None
        tenant: uuid.UUID | None = await call.db.fetchval("SELECT tenant_id FROM hubs WHERE id = $1", hub_id)
        return tenant
    actors = getattr(call.services, "actors", None)
    tenant_of = getattr(actors, "tenant_of", None)
    if tenant_of is None:
        return None
    found = await _maybe_await(tenant_of(kind, key))
    return uuid.UUID(str(found)) if found is not None else None


@api.route("GET", "/admin/actors", permission="actors.inspect", response=Item[ActorsOut],
           summary="Actor runtime statistics and this tenant's live actors")
async def actor_statistics(call: Call) -> Any:
    actors = getattr(call.services, "actors", None)
    if actors is None:
        return item({"available": False, "statistics": None, "actors": []})
    stats = await _maybe_await(actors.statistics())
    # System-wide counters (no tenant data in them) plus this tenant's live actors.
    mine = actors.live_for_tenant(str(call.tenant_id))
    return item({"available": True, "statistics": stats if isinstance(stats, dict) else {"value": stats}, "actors": mine})


@api.route("GET", "/admin/actors/<kind>/<key>", permission="actors.inspect", response=Item[ActorOut],
           summary="Inspect one actor of this tenant", errors=(503,))
async def inspect_actor(call: Call, kind: str, key: str) -> Any:
    if await _tenant_of(call, kind, key) != call.tenant_id:
        raise NotFound("no such actor")
    actors = getattr(call.services, "actors", None)
    if actors is None:
        raise Unavailable("the actor runtime is not running")
    state = await _maybe_await(actors.inspect(Address(kind, key)))
    return item({"kind": kind, "key": key, "state": state if isinstance(state, dict) or state is None else {"value": state}})
