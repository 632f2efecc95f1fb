"""Knowledge base over REST: search the manuals, list/read them, upload and delete the tenant's own; AI usage.

A tenant sees the global manuals and its own, never another tenant's (an
id of another tenant's manual answers 404).  Admins upload and delete their
tenant's manuals; global manuals are read-only here (403) and managed with
``ensemble knowledge`` on the server.  The work happens in
``services.knowledge`` (``ensemble.knowledge.service``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import trio
from pydantic import BaseModel, ConfigDict, Field
from quart import request

from ensemble.errors import Forbidden, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import Item, ItemList, ListQuery, QueryModel, ResponseModel, Text, sort_param
from ensemble.gateway.routes._streaming import download_response
from ensemble.knowledge import CATEGORIES, SearchResult
from ensemble.knowledge.service import ManualFields, clean_filename, usage_report
from ensemble.persistence.repos import knowledge as repo

api = Api("knowledge", tag="Knowledge")

# Room for the multipart envelope (boundaries, part headers, form fields) around the file.
_MULTIPART_OVERHEAD = 64 << 10
_FORM_FIELDS = ("file", "source", "manufacturer", "model", "equipment_type", "category")

Category = Literal[CATEGORIES]  # type: ignore[valid-type]
Scope = Literal["global", "tenant"]


# -- shapes -------------------------------------------------------------------------


class CitationOut(ResponseModel):
    source: str
    page: int = Field(description="1-based page of the manual.")
    document_id: uuid.UUID


class SearchHitOut(ResponseModel):
    chunk_id: str
    score: float = Field(description="Fused relevance (reciprocal rank fusion); higher is better.")
    text: str
    citation: CitationOut
    heading: str | None
    manufacturer: str | None
    model: str | None
    equipment_type: str | None
    category: str | None
    scope: Scope = Field(description="global = a platform manual; tenant = one of your organisation's.")


class SearchMeta(ResponseModel):
    query: str
    k: int


class SearchOut(ResponseModel):
    data: list[SearchHitOut]
    meta: SearchMeta


class SearchQuery(QueryModel):
    q: Text(500, 1) = Field(description="The question or keywords.")  # type: ignore[valid-type]
    manufacturer: Text(200, 1) | None = None  # type: ignore[valid-type]
    model: Text(200, 1) | None = None  # type: ignore[valid-type]
    equipment_type: Text(200, 1) | None = None  # type: ignore[valid-type]
    category: Category | None = None
    k: int = Field(5, ge=1, le=20, description="How many passages.")


class DocumentOut(ResponseModel):
    id: uuid.UUID
    scope: Scope
    source: str = Field(description="The manual's name, as citations show it.")
    filename: str
    media_type: str
    format: Literal["pdf", "markdown", "text"]
    content_hash: str = Field(description="sha256 of the file: the same bytes are the same document.")
    size_bytes: int
    manufacturer: str | None
    model: str | None
    equipment_type: str | None
    category: str | None
    metadata: dict[str, str] = Field(description="What the file declares about itself (front matter, PDF information).")
    pages: int
    chunks: int
    version: int = Field(description="1, then +1 each time a new file replaces this manual.")
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class IngestOut(DocumentOut):
    outcome: Literal["created", "replaced", "unchanged"] = Field(
        description="created; replaced (a manual of the same source name had other bytes); unchanged (same bytes)."
    )


class DocumentQuery(ListQuery):
    scope: Literal["all", "global", "tenant"] = "all"
    manufacturer: Text(200, 1) | None = None  # type: ignore[valid-type]
    equipment_type: Text(200, 1) | None = None  # type: ignore[valid-type]
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(repo.SORTS, "source") = None  # type: ignore[valid-type]


class UploadForm(BaseModel):
    """multipart/form-data: the manual (PDF, Markdown or text) and what it is about."""

    model_config = ConfigDict(extra="forbid")
    file: bytes = Field(description="The manual: PDF (page by page), Markdown or plain text.")
    source: str | None = Field(None, max_length=200, description="Name cited for it; default: the file's title or name.")
    manufacturer: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    equipment_type: str | None = Field(None, max_length=200)
    category: Category | None = Field(None, description="Default: inferred per section.")


class UsageQuery(QueryModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)
    start: date | None = Field(None, alias="from", description="First UTC day (default: 29 days before 'to').")
    end: date | None = Field(None, alias="to", description="Last UTC day, inclusive (default: today).")


class UsageCounts(ResponseModel):
    requests: int
    answered: int = Field(description="Answered by the model (counted against the hourly AI request limit).")
    cache_hits: int = Field(description="Answered from the response cache, without an API call.")
    offline: int = Field(description="Answered with quoted excerpts (no API key configured).")
    failed: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float


class ModelUsage(UsageCounts):
    model: str


class DayUsage(UsageCounts):
    day: date
    models: list[ModelUsage]


class UsageTotals(UsageCounts):
    cache_hit_rate: float = Field(description="cache_hits / (answered + cache_hits).")


class UsageOut(ResponseModel):
    start: date
    end: date
    days: list[DayUsage]
    totals: UsageTotals


# -- search --------------------------------------------------------------------------


def _hit(result: SearchResult) -> dict[str, Any]:
    meta = result.metadata
    return {
        "chunk_id": result.chunk_id, "score": result.score, "text": result.text, "citation": dict(result.citation),
        "heading": meta.get("heading"), "manufacturer": meta.get("manufacturer"), "model": meta.get("model"),
        "equipment_type": meta.get("equipment_type"), "category": meta.get("category"),
        "scope": "global" if meta.get("tenant_id") is None else "tenant",
    }


@api.route("GET", "/knowledge/search", permission="knowledge.read", query=SearchQuery, response=SearchOut,
           summary="Search the manuals (global + your organisation's): passages with score and citation")
async def search(call: Call) -> Any:
    q: SearchQuery = call.query
    results = await call.services.knowledge.search(
        q.q, tenant_id=call.tenant_id, k=q.k, manufacturer=q.manufacturer, model=q.model,
        equipment_type=q.equipment_type, category=q.category,
    )
    return {"data": [_hit(r) for r in results], "meta": {"query": q.q, "k": q.k}}


# -- documents -----------------------------------------------------------------------


def _document(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**row, "scope": "global" if row["tenant_id"] is None else "tenant", **extra}


@api.route("GET", "/knowledge/documents", permission="knowledge.read", query=DocumentQuery,
           response=ItemList[DocumentOut], summary="List the manuals you can search (global + your organisation's)")
async def list_documents(call: Call) -> Any:
    q: DocumentQuery = call.query
    page = await call.services.knowledge.list_documents(
        viewer=call.tenant_id, scope=q.scope, manufacturer=q.manufacturer, equipment_type=q.equipment_type,
        search=q.search, sort=q.sort, limit=q.limit, offset=q.offset,
    )
    page.items[:] = [_document(row) for row in page.items]
    return page_of(page)


@api.route("GET", "/knowledge/documents/<uuid:document_id>", permission="knowledge.read",
           response=Item[DocumentOut], summary="A manual's metadata")
async def get_document(call: Call, document_id: uuid.UUID) -> Any:
    return item(_document(await call.services.knowledge.get_document(document_id, viewer=call.tenant_id)))


@api.route("GET", "/knowledge/documents/<uuid:document_id>/content", permission="knowledge.read",
           raw_media_type="*/*", summary="Download the manual's original file")
async def document_content(call: Call, document_id: uuid.UUID) -> Any:
    knowledge = call.services.knowledge
    row = await knowledge.get_document(document_id, viewer=call.tenant_id)
    store = knowledge.objects if row["tenant_id"] is None else knowledge.objects.scoped(call.tenant_id)
    stream = await store.get(row["object_key"])
    return download_response(stream, filename=row["filename"], content_type=row["media_type"])


@api.route(
    "POST", "/knowledge/documents", permission="knowledge.manage", body=UploadForm, body_kind="multipart",
    response=Item[IngestOut], status=201, errors=(409, 413, 415),
    summary="Upload a manual for your organisation (multipart/form-data, field 'file')",
    description="PDF, Markdown or plain text, at most ENSEMBLE_MAX_UPLOAD_BYTES; counts against "
    "ENSEMBLE_RATE_LIMIT_UPLOADS_PER_HOUR.  The same bytes again change nothing (outcome 'unchanged'); a "
    "file with the source name of an existing manual replaces it.  An unreadable, encrypted or empty file is "
    "refused (422) and changes nothing.",
)
async def upload_document(call: Call) -> Any:
    settings = call.services.settings
    call.gw.limiter.hit(
        ("upload", call.tenant_id), per_period=settings.rate_limit_uploads_per_hour, period_s=3600.0, what="uploads"
    )
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("upload manuals as multipart/form-data", details={"content_type": request.mimetype or None})
    if request.content_length is not None and request.content_length > settings.max_upload_bytes + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"manuals may be at most {settings.max_upload_bytes} bytes")
    request.max_content_length = settings.max_upload_bytes + _MULTIPART_OVERHEAD
    form = await request.form
    parts = await request.files
    unknown = sorted((set(form) | set(parts)) - set(_FORM_FIELDS))
    if unknown:
        raise InvalidInput("unknown form fields", details=[{"field": f, "message": "unknown field"} for f in unknown])
    upload = parts.get("file")
    if upload is None:
        raise InvalidInput("no file", details=[{"field": "file", "message": "required"}])
    fields = _fields(form)
    filename = clean_filename(upload.filename)
    data: bytes = await trio.to_thread.run_sync(upload.stream.read)  # the parser may have spooled it to disk
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"manuals may be at most {settings.max_upload_bytes} bytes")
    if not data:
        raise InvalidInput("the file is empty", details=[{"field": "file", "message": "empty"}])
    outcome = await call.services.knowledge.ingest(
        data, filename=filename, media_type=upload.mimetype or None, tenant_id=call.tenant_id, fields=fields,
        actor=call.actor,
    )
    return item(_document(outcome.document, outcome=outcome.outcome))


def _fields(form: Any) -> ManualFields:
    values: dict[str, str | None] = {}
    for name in _FORM_FIELDS[1:]:
        raw = form.get(name)
        value = raw.strip() if isinstance(raw, str) else None
        if value and (len(value) > 200 or "\x00" in value):
            raise InvalidInput("invalid field", details=[{"field": name, "message": "at most 200 characters"}])
        values[name] = value or None
    category = values["category"]
    if category is not None and category.lower() not in CATEGORIES:
        raise InvalidInput(
            "unknown category", details=[{"field": "category", "message": f"one of {', '.join(CATEGORIES)}"}]
        )
    return ManualFields(**values)


@api.route("DELETE", "/knowledge/documents/<uuid:document_id>", permission="knowledge.manage",
           summary="Delete one of your organisation's manuals (its file and every indexed passage)")
async def delete_document(call: Call, document_id: uuid.UUID) -> None:
    knowledge = call.services.knowledge
    row = await knowledge.get_document(document_id, viewer=call.tenant_id)
    if row["tenant_id"] is None:
        raise Forbidden("global manuals are managed by the server operator (ensemble knowledge)")
    await knowledge.delete_document(document_id, tenant_id=call.tenant_id, actor=call.actor)


# -- AI usage ------------------------------------------------------------------------


@api.route("GET", "/ai/usage", permission="ai.usage", query=UsageQuery, response=Item[UsageOut],
           summary="AI usage and cost of your organisation by UTC day (from/to: dates, inclusive; at most 366 days)")
async def ai_usage(call: Call) -> Any:
    q: UsageQuery = call.query
    end = q.end or datetime.now(timezone.utc).date()
    start = q.start or end - timedelta(days=29)
    return item(await usage_report(call.db, call.tenant_id, start, end))
