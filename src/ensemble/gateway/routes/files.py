"""Files: multipart upload into the tenant's part of the object store, metadata, downloads."""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import IO, Any

import trio
from pydantic import BaseModel, ConfigDict, Field
from quart import request

from ensemble.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ensemble.gateway._routing import Api, Call, item, page_of
from ensemble.gateway._validation import Item, ItemList, ListQuery, ResponseModel, Text, sort_param
from ensemble.gateway.routes._streaming import download_response
from ensemble.persistence.objects import tenant_key
from ensemble.persistence.repos import files

api = Api("files", tag="Files")

_CHUNK = 1 << 20
# Room for the multipart envelope (boundaries, part headers) around the file.
_MULTIPART_OVERHEAD = 64 << 10


class FileOut(ResponseModel):
    id: uuid.UUID
    name: str
    content_type: str
    size_bytes: int
    etag: str | None
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None


class DownloadOut(ResponseModel):
    url: str
    expires_at: datetime


class UploadForm(BaseModel):
    """multipart/form-data: the file part, and optionally a display name."""

    model_config = ConfigDict(extra="forbid")
    file: bytes = Field(description="The file; its part's Content-Type must be an allowed type.")
    name: str | None = Field(None, max_length=255, description="Display name; default: the part's filename.")


class FileQuery(ListQuery):
    content_type: Text(255, 1) | None = None  # type: ignore[valid-type]
    search: Text(100, 1) | None = None  # type: ignore[valid-type]
    sort: sort_param(files.SORTS, "-created_at") = None  # type: ignore[valid-type]


def _allowed(content_type: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in patterns)


def _display_name(raw: str | None) -> str:
    # Some clients send a full client-side path; keep the last segment only.
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise InvalidInput("the file needs a name", details=[{"field": "name", "message": "missing"}])
    if len(name) > 255 or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput("invalid file name", details=[{"field": "name", "message": "1-255 printable characters"}])
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("invalid file name", details=[{"field": "name", "message": "not valid Unicode"}]) from None
    return name


def _size(fileobj: IO[bytes]) -> int:
    fileobj.seek(0, 2)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


async def _chunks(fileobj: IO[bytes]) -> AsyncIterator[bytes]:
    while True:
        # The parser may have spooled the part to disk: read off the loop.
        chunk = await trio.to_thread.run_sync(fileobj.read, _CHUNK)
        if not chunk:
            return
        yield chunk


@api.route(
    "POST", "/files", permission="files.write", body=UploadForm, body_kind="multipart",
    response=Item[FileOut], status=201, errors=(413, 415),
    summary="Upload a file (multipart/form-data, field 'file')",
    description="Size limit ENSEMBLE_MAX_UPLOAD_BYTES; allowed types ENSEMBLE_UPLOAD_CONTENT_TYPES; "
    "uploads are rate limited per tenant (ENSEMBLE_RATE_LIMIT_UPLOADS_PER_HOUR).",
)
async def upload_file(call: Call) -> Any:
    settings = call.services.settings
    call.gw.limiter.hit(
        ("upload", call.tenant_id), per_period=settings.rate_limit_uploads_per_hour, period_s=3600.0, what="uploads"
    )
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("upload files as multipart/form-data", details={"content_type": request.mimetype or None})
    if request.content_length is not None and request.content_length > settings.max_upload_bytes + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"files may be at most {settings.max_upload_bytes} bytes")
    request.max_content_length = settings.max_upload_bytes + _MULTIPART_OVERHEAD
    form = await request.form
    parts = await request.files
    unknown = sorted((set(form) | set(parts)) - {"file", "name"})
    if unknown:
        raise InvalidInput("unknown form fields", details=[{"field": f, "message": "unknown field"} for f in unknown])
    upload = parts.get("file")
    if upload is None:
        raise InvalidInput("no file", details=[{"field": "file", "message": "required"}])
    content_type = (upload.mimetype or "").lower()
    if not _allowed(content_type, settings.upload_content_types):
        raise UnsupportedMediaType(
            f"files of type {content_type or '(none)'} are not accepted",
            details={"content_type": content_type or None, "accepted": settings.upload_content_types},
        )
    name = _display_name(form.get("name") or upload.filename)
    size = _size(upload.stream)
    if size > settings.max_upload_bytes:
        raise PayloadTooLarge(f"files may be at most {settings.max_upload_bytes} bytes")
    if size == 0:
        raise InvalidInput("the file is empty", details=[{"field": "file", "message": "empty"}])

    file_id = uuid.uuid4()
    key = tenant_key(call.tenant_id, "files", str(file_id))  # the user's name never becomes a path
    store = call.services.objects.scoped(call.tenant_id)
    info = await store.put(key, _chunks(upload.stream), content_type=content_type, metadata={"file-id": str(file_id)})
    try:
        row = await call.db.run(
            files.create,
            call.actor,
            {"id": file_id, "name": name, "object_key": key, "content_type": content_type,
             "size_bytes": info.size, "etag": info.etag},
        )
    except BaseException:
        # No metadata row, no object: undo the upload, even when cancelled.
        with trio.CancelScope(shield=True):
            await store.delete(key)
        raise
    return item(row)


@api.route("GET", "/files", permission="files.read", query=FileQuery, response=ItemList[FileOut],
           summary="List files (filter by content type; search names)")
async def list_files(call: Call) -> Any:
    q: FileQuery = call.query
    page = await call.db.run(
        lambda conn: files.list_files(
            conn, call.tenant_id, content_type=q.content_type, search=q.search, sort=q.sort, limit=q.limit, offset=q.offset
        )
    )
    return page_of(page)


@api.route("GET", "/files/<uuid:file_id>", permission="files.read", response=Item[FileOut], summary="File metadata")
async def get_file(call: Call, file_id: uuid.UUID) -> Any:
    return item(await call.db.run(files.get, call.tenant_id, file_id))


@api.route("GET", "/files/<uuid:file_id>/download", permission="files.read", response=Item[DownloadOut],
           summary="A signed, expiring download URL for the file")
async def download_url(call: Call, file_id: uuid.UUID) -> Any:
    row = await call.db.run(files.get, call.tenant_id, file_id)
    ttl = call.services.settings.signed_url_ttl_s
    url = await call.services.objects.scoped(call.tenant_id).signed_url(row["object_key"], ttl)
    if url.startswith("/"):  # the local store signs paths; we know our origin
        url = request.host_url.rstrip("/") + url
    return item({"url": url, "expires_at": datetime.now(timezone.utc) + timedelta(seconds=ttl)})


@api.route("GET", "/files/<uuid:file_id>/content", permission="files.read", raw_media_type="*/*",
           summary="Download the file's bytes (authenticated)")
async def file_content(call: Call, file_id: uuid.UUID) -> Any:
    row = await call.db.run(files.get, call.tenant_id, file_id)
    stream = await call.services.objects.scoped(call.tenant_id).get(row["object_key"])
    return download_response(stream, filename=row["name"], content_type=row["content_type"])


@api.route("DELETE", "/files/<uuid:file_id>", permission="files.delete", summary="Delete a file and its bytes")
async def delete_file(call: Call, file_id: uuid.UUID) -> None:
    row = await call.db.run(files.delete, call.actor, file_id)
    # The row is gone first: if the object delete fails, an orphan object
    # is left (invisible to the API), never a row without bytes.
    await call.services.objects.scoped(call.tenant_id).delete(row["object_key"])
