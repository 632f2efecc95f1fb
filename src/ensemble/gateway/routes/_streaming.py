"""Send an object store stream as an HTTP download, safely."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from quart import Response

from ensemble.persistence.objects import ObjectStream

__all__ = ["download_response"]


def _disposition(filename: str | None) -> str:
    if not filename:
        return "attachment"
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_response(stream: ObjectStream, *, filename: str | None, content_type: str | None = None) -> Response:
    async def body() -> AsyncIterator[bytes]:
        # Closes the store's stream even when the client goes away mid-way.
        async with stream:
            async for chunk in stream:
                yield chunk

    info = stream.info
    response = Response(body(), status=200, content_type=content_type or info.content_type)
    response.headers["Content-Length"] = str(info.size)
    response.headers["ETag"] = f'"{info.etag}"'
    # Uploaded bytes are the uploader's, not ours: never render them in our
    # origin (no sniffing, no inline, no scripts even if opened directly).
    response.headers["Content-Disposition"] = _disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
