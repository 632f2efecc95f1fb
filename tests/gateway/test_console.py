"""The console's static files: served at / and /console/, under a strict CSP."""

from __future__ import annotations

from pathlib import Path

import pytest

from ensemble.gateway.console._serve import STATIC_DIR
from tests.server import running_server


async def test_index_and_assets_are_served_with_a_strict_policy(database_url: str, tmp_path: Path) -> None:
    async with running_server(database_url, tmp_path) as srv, srv.client() as http:
        index = await http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/console/js/app.js">' in index.text
        policy = index.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "'unsafe-inline'" not in policy
        assert index.headers["x-content-type-options"] == "nosniff"

        script = await http.get("/console/js/app.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert script.text == (STATIC_DIR / "js" / "app.js").read_text()
        # Revalidated, not cached blindly: there is no build step to fingerprint files.
        assert script.headers["cache-control"] == "no-cache"
        etag = script.headers["etag"]
        again = await http.get("/console/js/app.js", headers={"If-None-Match": etag})
        assert again.status_code == 304


@pytest.mark.parametrize("path", [
    "/console/no-such-file.js",
    "/console/../_serve.py",
    "/console/%2e%2e/_serve.py",
    "/console/..%2F_serve.py",
    "/console//etc/passwd",
])
async def test_missing_and_escaping_paths_are_404(database_url: str, tmp_path: Path, path: str) -> None:
    async with running_server(database_url, tmp_path) as srv, srv.client() as http:
        r = await http.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "def asset" not in r.text and "root:" not in r.text


def test_every_module_the_shell_routes_to_exists() -> None:
    app = (STATIC_DIR / "js" / "app.js").read_text()
    for view in ("login", "dashboard", "sessions", "session", "knowledge", "admin"):
        assert f'"./views/{view}.js"' in app
        assert (STATIC_DIR / "js" / "views" / f"{view}.js").is_file(), view
