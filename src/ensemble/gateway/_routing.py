"""Route declarations: one decorator that registers, guards and documents a route.

::

    api = Api("clients", tag="Clients")

    @api.route("GET", "/clients/<uuid:client_id>", permission="clients.read",
               response=Item[ClientOut], summary="Get a client")
    async def get_client(call: Call, client_id: uuid.UUID) -> Any:
        return item(await call.db.run(clients.get, call.tenant_id, client_id))

The wrapper does, in order: per-IP rate limit (auth routes), authentication
and per-user/tenant rate limits, the permission check, query and body
validation, the handler, and rendering through the response model in the
client's format.  The same declaration feeds the OpenAPI spec and the test
matrices (:func:`all_routes`), so what is documented and tested is what runs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from quart import Blueprint, Response, g, request

from ensemble.errors import Forbidden
from ensemble.gateway._auth import Principal, client_ip, verify_request
from ensemble.gateway._negotiation import make_response, read_body
from ensemble.gateway._permissions import PERMISSIONS, PUBLIC, allows
from ensemble.gateway._state import Gateway, gateway
from ensemble.gateway._validation import validate_body, validate_query
from ensemble.persistence.repos import Actor, Page

if TYPE_CHECKING:
    from ensemble.persistence.database import Database
    from ensemble.server import Services

__all__ = ["Api", "Call", "RouteSpec", "all_routes", "item", "page_of", "PATH_PARAM"]

RateClass = Literal["auth", "api", "none"]
BodyKind = Literal["json", "multipart", "none"]

# <converter:name> or <name> in a Quart rule.
PATH_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")

_ROUTES: list["RouteSpec"] = []


@dataclass(frozen=True)
class RouteSpec:
    method: str
    rule: str
    endpoint: str
    permission: str
    summary: str
    tag: str
    description: str = ""
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    rate: RateClass = "api"
    body_kind: BodyKind = "none"
    # For routes that answer with something other than a JSON document
    # (file bytes, HTML, Prometheus text): the media type, for the spec.
    raw_media_type: str | None = None
    errors: tuple[int, ...] = ()
    # Non-error statuses answered with another model (e.g. /readyz's 503).
    alt_responses: tuple[tuple[int, type[BaseModel]], ...] = ()

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """``[(name, converter)]`` in path order."""
        return [(m["name"], m["converter"] or "default") for m in PATH_PARAM.finditer(self.rule)]

    @property
    def openapi_path(self) -> str:
        return PATH_PARAM.sub(lambda m: "{" + m["name"] + "}", self.rule)

    @property
    def authenticated(self) -> bool:
        return self.permission != PUBLIC


def all_routes() -> list[RouteSpec]:
    """Every declared route (importing ``ensemble.gateway.routes`` declares them all)."""
    import ensemble.gateway.routes  # noqa: F401 - registers on import

    return list(_ROUTES)


@dataclass
class Call:
    """What a handler gets: the services, the verified caller and the validated input."""

    gw: Gateway
    principal: Principal | None
    request_id: str
    ip: str
    body: Any = None
    query: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> "Services":
        return self.gw.services

    @property
    def db(self) -> "Database":
        return self.gw.services.db

    @property
    def me(self) -> Principal:
        if self.principal is None:  # a public route asked for the caller: a bug, not a client error
            raise RuntimeError("this route is public; there is no caller")
        return self.principal

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.me.tenant_id

    @property
    def actor(self) -> Actor:
        return Actor(tenant_id=self.me.tenant_id, user_id=self.me.user_id, request_id=self.request_id)


Handler = Callable[..., Awaitable[Any]]


def item(row: Any) -> dict[str, Any]:
    return {"data": row}


def page_of(page: Page) -> dict[str, Any]:
    return {"data": page.items, "meta": {"total": page.total, "limit": page.limit, "offset": page.offset}}


class Api:
    """A blueprint under ``/api/v1`` whose routes are declared with :meth:`route`."""

    def __init__(self, name: str, *, tag: str, url_prefix: str = "/api/v1") -> None:
        self.blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
        self.tag = tag
        self.url_prefix = url_prefix

    def route(
        self,
        method: str,
        rule: str,
        *,
        permission: str,
        summary: str,
        description: str = "",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int | None = None,
        rate: RateClass = "api",
        body_kind: BodyKind | None = None,
        raw_media_type: str | None = None,
        errors: tuple[int, ...] = (),
        alt_responses: tuple[tuple[int, type[BaseModel]], ...] = (),
    ) -> Callable[[Handler], Handler]:
        if permission != PUBLIC and permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        kind: BodyKind = body_kind or ("json" if body is not None else "none")
        if status is None:
            status = 200 if (response is not None or raw_media_type) else 204

        def register(handler: Handler) -> Handler:
            spec = RouteSpec(
                method=method.upper(),
                rule=self.url_prefix + rule,
                endpoint=f"{self.blueprint.name}.{handler.__name__}",
                permission=permission,
                summary=summary,
                tag=self.tag,
                description=description or (handler.__doc__ or "").strip(),
                body=body,
                query=query,
                response=response,
                status=status,
                rate=rate,
                body_kind=kind,
                raw_media_type=raw_media_type,
                errors=errors,
                alt_responses=alt_responses,
            )

            async def view(**path_params: Any) -> Response:
                call = await _prepare(spec)
                result = await handler(call, **path_params)
                return _render(spec, result)

            view.__name__ = handler.__name__
            view.__doc__ = handler.__doc__
            self.blueprint.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[spec.method])
            _ROUTES.append(spec)
            return handler

        return register


async def _prepare(spec: RouteSpec) -> Call:
    gw = gateway()
    settings = gw.services.settings
    ip = client_ip(request)
    if spec.rate == "auth":
        gw.limiter.hit(("auth", ip), per_period=settings.rate_limit_auth_per_minute, period_s=60.0)
    principal: Principal | None = None
    if spec.authenticated:
        principal = await verify_request(gw, request, rate_limit=spec.rate != "none")
        if not allows(principal.role, spec.permission):
            raise Forbidden(f"role {principal.role!r} lacks permission {spec.permission!r}")
    call = Call(gw=gw, principal=principal, request_id=_request_id(), ip=ip)
    if spec.query is not None:
        call.query = validate_query(spec.query, request.args)
    if spec.body_kind == "json" and spec.body is not None:
        raw = await read_body(request, settings.max_body_bytes)
        call.body = validate_body(spec.body, raw)
    return call


def _request_id() -> str:
    return str(getattr(g, "request_id", "") or "")


def _render(spec: RouteSpec, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if spec.response is None:
        empty = Response(b"", status=spec.status)
        del empty.headers["Content-Type"]
        return empty
    data = spec.response.model_validate(result).model_dump(mode="json")
    return make_response(request, data, spec.status)
