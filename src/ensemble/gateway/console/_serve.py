"""Serve the console's static files with a strict Content-Security-Policy.

Everything the console loads comes from this server (``'self'``): no inline
script or style, no CDN, so an injected string can never run.  Files are
revalidated on every load (``no-cache`` with ETag/Last-Modified) rather than
cached for a long time: there is no build step to fingerprint them, and an
upgraded server must not keep serving a stale console.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, send_from_directory

__all__ = ["console", "STATIC_DIR", "CONTENT_SECURITY_POLICY"]

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "connect-src 'self' ws: wss:",
    # blob: for a cited manual page: the console fetches the PDF with its
    # bearer token and shows it from a blob URL.
    "frame-src 'self' blob:",
    "object-src 'self' blob:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

console = Blueprint("console", __name__)


def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


@console.get("/")
async def index() -> Response:
    return _harden(await send_from_directory(STATIC_DIR, "index.html"))


@console.get("/console/<path:name>")
async def asset(name: str) -> Response:
    # send_from_directory refuses paths that leave STATIC_DIR (".." or absolute)
    # with a 404, answered as JSON by the app's error handler.
    return _harden(await send_from_directory(STATIC_DIR, name))
