"""Download a print file from its signed URL, checking size and SHA-256.

The hub never sends credentials with the download: the URL is the
credential (presigned S3, or the gateway's signed ``/api/v1/objects/...``
link).  The standard library's HTTP client runs in a worker thread; progress
crosses back into trio.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urljoin

import trio

from ensemble.hubs.agent._connector import CommandFailed

__all__ = ["download", "resolve_url"]

_READ = 64 * 1024


def resolve_url(url: str, origin: str) -> str:
    """Absolute form of ``url`` (the local object store signs paths, not URLs)."""
    return urljoin(origin + "/", url) if url.startswith("/") else url


async def download(
    url: str, *, expected_size: int, sha256: str, progress: Callable[[int, int], None], timeout_s: float = 60.0
) -> bytes:
    def fetch() -> bytes:
        digest = hashlib.sha256()
        parts = bytearray()
        request = urllib.request.Request(url, headers={"User-Agent": "ensemble-hub-agent"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                while True:
                    chunk = response.read(_READ)
                    if not chunk:
                        break
                    parts += chunk
                    digest.update(chunk)
                    if len(parts) > expected_size:
                        raise CommandFailed("the print file is larger than announced", "file_mismatch")
                    trio.from_thread.run_sync(progress, len(parts), expected_size)
        except urllib.error.HTTPError as exc:
            raise CommandFailed(f"download refused: HTTP {exc.code}", "download_failed") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommandFailed(f"download failed: {exc}", "download_failed") from None
        if len(parts) != expected_size:
            raise CommandFailed(f"the print file has {len(parts)} bytes, not {expected_size}", "file_mismatch")
        if digest.hexdigest() != sha256:
            raise CommandFailed("the print file's SHA-256 does not match", "file_mismatch")
        return bytes(parts)

    return await trio.to_thread.run_sync(fetch, abandon_on_cancel=True)
