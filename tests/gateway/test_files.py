"""Files: multipart upload into the object store, metadata row, signed and authenticated downloads."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.gateway.conftest import Harness
from tests.server import running_server

PDF = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF"


async def _roundtrip(h: Harness) -> None:
    owner = await h.signup()
    r = await owner.post(
        "/api/v1/files", files={"file": ("service manual.pdf", PDF, "application/pdf")}
    )
    assert r.status_code == 201, r.text
    meta = r.json()["data"]
    assert meta["name"] == "service manual.pdf"
    assert meta["content_type"] == "application/pdf"
    assert meta["size_bytes"] == len(PDF)
    assert meta["created_by"] == owner.user_id

    # The object sits under the tenant's prefix, named by id, not by the user's file name.
    key = await h.db.fetchval("SELECT object_key FROM files WHERE id = $1", uuid.UUID(meta["id"]))
    assert key == f"tenants/{owner.tenant_id}/files/{meta['id']}"

    # Authenticated download.
    r = await owner.get(f"/api/v1/files/{meta['id']}/content")
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(PDF).digest()
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["x-content-type-options"] == "nosniff"

    # Signed download URL: works without a token, until tampered with.
    r = await owner.get(f"/api/v1/files/{meta['id']}/download")
    assert r.status_code == 200
    url = r.json()["data"]["url"]
    async with httpx.AsyncClient(timeout=30) as anonymous:
        r = await anonymous.get(url)
        assert r.status_code == 200
        assert r.content == PDF

    listing = (await owner.get("/api/v1/files", params={"search": "manual"})).json()
    assert [f["id"] for f in listing["data"]] == [meta["id"]]

    r = await owner.delete(f"/api/v1/files/{meta['id']}")
    assert r.status_code == 204
    assert (await owner.get(f"/api/v1/files/{meta['id']}")).status_code == 404
    assert (await owner.get(f"/api/v1/files/{meta['id']}/content")).status_code == 404
    assert await h.count("files", "id = $1", uuid.UUID(meta["id"])) == 0


async def test_upload_download_roundtrip_local(h: Harness) -> None:
    await _roundtrip(h)


async def test_upload_download_roundtrip_s3(database_url: str, tmp_path: Path, moto_endpoint: str) -> None:
    async with running_server(
        database_url,
        tmp_path,
        s3_endpoint=moto_endpoint,
        s3_bucket=f"ens-gw-{uuid.uuid4().hex[:12]}",
        s3_access_key="testing",
        s3_secret_key="testing",
    ) as srv, srv.client() as http:
        await _roundtrip(Harness(srv, http))


async def test_local_signed_urls_resist_tampering(h: Harness) -> None:
    owner = await h.signup()
    r = await owner.post("/api/v1/files", files={"file": ("a.txt", b"secret notes", "text/plain")})
    file_id = r.json()["data"]["id"]
    url = (await owner.get(f"/api/v1/files/{file_id}/download")).json()["data"]["url"]
    parts = urlsplit(url)
    path, query = parts.path, parts.query
    assert (await h.http.get(f"{path}?{query}")).status_code == 200
    forged_sig = query.replace("sig=", "sig=A")
    assert (await h.http.get(f"{path}?{forged_sig}")).status_code == 403
    expires = int(dict(p.split("=", 1) for p in query.split("&"))["expires"])
    later = query.replace(f"expires={expires}", f"expires={expires + 3600}")
    assert (await h.http.get(f"{path}?{later}")).status_code == 403
    # Another key with this valid signature: refused too.
    other = path.rsplit("/", 1)[0] + "/" + str(uuid.uuid4())
    assert (await h.http.get(f"{other}?{query}")).status_code == 403
    assert (await h.http.get(path)).status_code == 422  # no signature at all


async def test_upload_limits(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path, max_upload_bytes=64 * 1024) as srv, srv.client() as http:
        h = Harness(srv, http)
        owner = await h.signup()
        before = await h.count("files")
        objects_dir = Path(srv.services.settings.data_dir) / "objects"

        r = await owner.post("/api/v1/files", files={"file": ("big.pdf", b"x" * (64 * 1024 + 1), "application/pdf")})
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
        r = await owner.post("/api/v1/files", files={"file": ("page.html", b"<script>", "text/html")})
        assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
        r = await owner.post("/api/v1/files", files={"file": ("x.svg", b"<svg/>", "image/svg+xml")})
        assert r.status_code == 415
        r = await owner.post("/api/v1/files", json={"file": "not multipart"})
        assert r.status_code == 415
        r = await owner.post("/api/v1/files", files={"other": ("a.txt", b"hi", "text/plain")})
        assert r.status_code == 422
        r = await owner.post("/api/v1/files", files={"file": ("empty.txt", b"", "text/plain")})
        assert r.status_code == 422
        r = await owner.post(
            "/api/v1/files", files={"file": ("a.txt", b"hi", "text/plain")}, data={"colour": "red"}
        )
        assert r.status_code == 422 and r.json()["details"] == [{"field": "colour", "message": "unknown field"}]
        assert await h.count("files") == before
        stored = [p for p in objects_dir.rglob("*") if p.is_file() and "files" in p.parts]
        assert stored == []


async def test_path_in_file_name_is_only_a_name(h: Harness) -> None:
    owner = await h.signup()
    r = await owner.post("/api/v1/files", files={"file": ("../../../etc/passwd", b"root:x:0:0", "text/plain")})
    assert r.status_code == 201, r.text
    meta = r.json()["data"]
    assert meta["name"] == "passwd"
    key = await h.db.fetchval("SELECT object_key FROM files WHERE id = $1", uuid.UUID(meta["id"]))
    assert key == f"tenants/{owner.tenant_id}/files/{meta['id']}"
    r = await owner.post(
        "/api/v1/files", files={"file": ("note.txt", b"hi", "text/plain")}, data={"name": "..\\..\\boot.ini"}
    )
    assert r.json()["data"]["name"] == "boot.ini"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/objects/../../etc/passwd",
        "/api/v1/objects/tenants/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/objects/tenants%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/objects//etc/passwd",
    ],
)
async def test_object_route_refuses_traversal(h: Harness, path: str) -> None:
    r = await h.http.get(path, params={"expires": "9999999999", "sig": "x"})
    assert r.status_code in (403, 404, 422), r.text
    assert b"root:" not in r.content


async def test_uploads_are_rate_limited_per_tenant(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path, rate_limit_uploads_per_hour=2) as srv, srv.client() as http:
        h = Harness(srv, http)
        owner = await h.signup()
        codes = []
        for i in range(3):
            r = await owner.post("/api/v1/files", files={"file": (f"{i}.txt", b"hello", "text/plain")})
            codes.append(r.status_code)
        assert codes == [201, 201, 429]
        assert int(r.headers["Retry-After"]) > 60  # an hourly bucket refills slowly
        # Another tenant has its own bucket.
        other = await h.signup()
        r = await other.post("/api/v1/files", files={"file": ("x.txt", b"hello", "text/plain")})
        assert r.status_code == 201


async def test_gcode_is_accepted_as_browsers_label_it(database_url: str, tmp_path: Path) -> None:
    # Chromium labels .gcode "text/x.gcode"; a print farm's main file type must upload as sent.
    async with running_server(database_url, tmp_path) as srv, srv.client() as http:
        owner = await Harness(srv, http).signup()
        for content_type in ("text/x.gcode", "text/x-gcode"):
            r = await owner.post("/api/v1/files", files={"file": ("cube.gcode", b"G28\nG1 X10\n", content_type)})
            assert r.status_code == 201, r.text
            assert r.json()["data"]["content_type"] == content_type
