"""The OpenAPI 3.1 document, generated from the route declarations, and a docs page.

Nothing here is written by hand per route: paths, parameters, bodies,
responses (including which errors a route can answer), permissions and
security all come from :class:`~ensemble.gateway._routing.RouteSpec` and
the pydantic models, so the spec cannot drift from what runs.
"""

from __future__ import annotations

import html
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from quart import Response

from ensemble.gateway._negotiation import JSON, MSGPACK_TYPES
from ensemble.gateway._permissions import PUBLIC, roles_for
from ensemble.gateway._routing import Api, Call, RouteSpec, all_routes
from ensemble.gateway._validation import ErrorBody

__all__ = ["build_spec", "api"]

api = Api("openapi", tag="Operations")

_REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Malformed body (not JSON/msgpack).",
    401: "Missing, invalid or expired token, or ended session.",
    403: "The caller's role lacks the permission, or a signed URL is invalid.",
    404: "No such object in the caller's tenant.",
    409: "Conflicts with the current state (duplicate, illegal transition, last owner).",
    413: "Body or upload too large.",
    415: "Unsupported Content-Type.",
    422: "Invalid input; details lists {field, message} for each problem.",
    429: "Rate limited; see Retry-After.",
    503: "A dependency is unavailable.",
}
_PATH_SCHEMAS = {
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string", "minLength": 1},
    "default": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}
_DESCRIPTION = """\
REST API of Ensemble.

* **Auth**: `Authorization: Bearer <access token>` from `/api/v1/auth/login` or `/signup`;
  the token names one tenant, and every request acts on that tenant only.
* **Formats**: JSON by default. `Accept: application/vnd.msgpack` (or `application/x-msgpack`)
  returns msgpack; request bodies may be msgpack with the matching `Content-Type`.
  UUIDs and timestamps are strings in both.
* **Errors**: `{"error": code, "message": text, "details"?: ...}`.
* **Pagination**: `limit` (1-200) and `offset` (up to 10000); lists answer `{data, meta: {total, limit, offset}}`.
"""


def _strip(schema: Any) -> Any:
    """Drop pydantic's titles (noise in every schema)."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: ``X | None`` is just X, since absence is the null."""
    out = {k: v for k, v in schema.items() if k != "default" or v is not None}
    variants = out.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and {"type": "null"} in variants:
        other = next(v for v in variants if v != {"type": "null"})
        out.pop("anyOf")
        out.update(other)
    return out


def _media(schema: dict[str, Any]) -> dict[str, Any]:
    return {media: {"schema": schema} for media in (JSON, *MSGPACK_TYPES)}


def _raw_schema(media_type: str) -> dict[str, Any]:
    if media_type == JSON:
        return {"type": "object"}
    if media_type.startswith("text/"):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def _error_statuses(spec: RouteSpec) -> list[int]:
    statuses = set(spec.errors)
    if spec.authenticated:
        statuses |= {401, 403}
    if spec.authenticated or spec.rate == "auth":
        statuses.add(429)
    if spec.path_params:
        statuses |= {404, 422}
    if spec.query is not None:
        statuses.add(422)
    if spec.body_kind == "json":
        statuses |= {400, 413, 415, 422}
    if spec.body_kind == "multipart":
        statuses |= {413, 415, 422}
    return sorted(statuses)


def build_spec(specs: list[RouteSpec] | None = None, *, version: str = "0") -> dict[str, Any]:
    specs = all_routes() if specs is None else specs
    models: list[tuple[type[BaseModel], str]] = [(ErrorBody, "serialization")]
    for spec in specs:
        if spec.body is not None:
            models.append((spec.body, "validation"))
        if spec.query is not None:
            models.append((spec.query, "validation"))
        if spec.response is not None:
            models.append((spec.response, "serialization"))
        models += [(model, "serialization") for _, model in spec.alt_responses]
    keys, top = models_json_schema(models, ref_template=_REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = _strip(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(keys[(model, mode)])  # type: ignore[index]

    error_ref = ref(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {
            "operationId": spec.endpoint.replace(".", "_"),
            "summary": spec.summary,
            "tags": [spec.tag],
            "x-permission": spec.permission,
            "x-roles": sorted(r.value for r in roles_for(spec.permission)),
            "security": [{"bearerAuth": []}] if spec.authenticated else [],
        }
        description = spec.description
        if spec.permission != PUBLIC:
            roles = ", ".join(sorted(r.value for r in roles_for(spec.permission)))
            description = f"{description}\n\nPermission `{spec.permission}`: {roles}.".strip()
        if description:
            operation["description"] = description
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": _PATH_SCHEMAS.get(conv, _PATH_SCHEMAS["default"])}
            for name, conv in spec.path_params
        ]
        if spec.query is not None:
            query_schema = schemas[ref(spec.query, "validation")["$ref"].rsplit("/", 1)[1]]
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                prop = _query_schema(prop)
                param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
                if "description" in prop:
                    param["description"] = prop.pop("description")
                param["schema"] = prop
                if prop.get("type") == "array":
                    param["style"], param["explode"] = "form", True
                parameters.append(param)
        if parameters:
            operation["parameters"] = parameters
        if spec.body is not None and spec.body_kind == "json":
            body_ref = ref(spec.body, "validation")
            operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body_ref}}}
        elif spec.body is not None and spec.body_kind == "multipart":
            operation["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": ref(spec.body, "validation")}},
            }
        responses: dict[str, Any] = {}
        if spec.response is not None:
            responses[str(spec.status)] = {"description": "OK", "content": _media(ref(spec.response, "serialization"))}
        elif spec.raw_media_type is not None:
            responses[str(spec.status)] = {
                "description": "OK",
                "content": {spec.raw_media_type: {"schema": _raw_schema(spec.raw_media_type)}},
            }
        else:
            responses[str(spec.status)] = {"description": "Done; no content."}
        for status, model in spec.alt_responses:
            responses[str(status)] = {"description": "See schema", "content": _media(ref(model, "serialization"))}
        for status in _error_statuses(spec):
            if str(status) in responses:
                continue
            entry: dict[str, Any] = {"description": _ERROR_TEXT.get(status, "Error"), "content": _media(error_ref)}
            if status == 429:
                entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
            responses[str(status)] = entry
        operation["responses"] = responses
        paths.setdefault(spec.openapi_path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ensemble API", "version": version, "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


_spec_cache: dict[str, bytes] = {}


def _spec_bytes() -> bytes:
    # Routes are fixed once imported: build once per process.
    if "spec" not in _spec_cache:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ver = version("ensemble-server")
        except PackageNotFoundError:
            ver = "0"
        _spec_cache["spec"] = json.dumps(build_spec(version=ver), separators=(",", ":")).encode()
    return _spec_cache["spec"]


@api.route("GET", "/openapi.json", permission=PUBLIC, rate="none", raw_media_type=JSON,
           summary="This OpenAPI document")
async def openapi_json(call: Call) -> Any:
    return Response(_spec_bytes(), status=200, content_type=JSON)


_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ensemble API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
<style>body{{font-family:system-ui,sans-serif;margin:0}} table{{border-collapse:collapse;margin:1em}}
td,th{{border:1px solid #ccc;padding:.25em .5em;text-align:left}}</style></head>
<body><div id="swagger-ui"></div>
<noscript><h1>Ensemble API</h1><p>Spec: <a href="{spec}">{spec}</a></p>
<table><tr><th>method</th><th>path</th><th>permission</th><th>summary</th></tr>{rows}</table></noscript>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js" crossorigin></script>
<script>window.onload=function(){{if(window.SwaggerUIBundle){{SwaggerUIBundle({{url:"{spec}",dom_id:"#swagger-ui"}});}}
else{{document.body.innerHTML=document.querySelector("noscript").textContent;}}}};</script>
</body></html>"""


@api.route("GET", "/docs", permission=PUBLIC, rate="none", raw_media_type="text/html",
           summary="Human-readable API documentation")
async def docs(call: Call) -> Any:
    rows = "".join(
        f"<tr><td>{s.method}</td><td>{html.escape(s.openapi_path)}</td><td>{html.escape(s.permission)}</td>"
        f"<td>{html.escape(s.summary)}</td></tr>"
        for s in all_routes()
    )
    page = _DOCS.format(spec="/api/v1/openapi.json", rows=rows)
    response = Response(page, status=200, content_type="text/html; charset=utf-8")
    return response
