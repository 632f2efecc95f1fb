"""``ensemble knowledge``: ingest files and directories (global or a tenant's), list, delete, samples.

The command runs its own ``trio.run``, so the tests call ``cli.main`` in a
worker thread with the environment pointing at a private database.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from ensemble import cli
from ensemble.knowledge import sample_documents
from ensemble.persistence.database import open_database
from tests.knowledge.helpers import encrypted

from .conftest import MANUAL_PDF, new_tenant


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_db_url: str, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("ENSEMBLE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("ENSEMBLE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ENSEMBLE_LOG_LEVEL", "warning")
    monkeypatch.setenv("ENSEMBLE_LOG_FORMAT", "console")
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps long lines at the terminal width
    for name in ("ANTHROPIC_API_KEY", "ENSEMBLE_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return data_dir


async def _run(*argv: str) -> int:
    return await trio.to_thread.run_sync(partial(cli.main, ["knowledge", *argv]))


async def _rows(bridge: Any, url: str) -> list[dict[str, Any]]:
    async with open_database(bridge, url, min_size=1, max_size=2) as db:
        return [dict(r) for r in await db.fetch("SELECT * FROM knowledge_documents ORDER BY source")]


async def test_ingest_reports_each_file_and_continues_past_bad_ones(
    env: Path, tmp_path: Path, fresh_db_url: str, bridge: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    manuals = tmp_path / "manuals"
    (manuals / "zephyr").mkdir(parents=True)
    (manuals / "zephyr" / "zx90.pdf").write_bytes(MANUAL_PDF)
    (manuals / "notes.md").write_text("# Field notes\n\nAlways check the disconnect first.\n")
    (manuals / "locked.pdf").write_bytes(encrypted(MANUAL_PDF, user_password="pw"))
    (manuals / "photo.jpg").write_bytes(b"\xff\xd8 not a manual")  # not a manual suffix: skipped

    code = await _run("ingest", str(manuals), str(tmp_path / "missing.pdf"), "--manufacturer", "Zephyr")
    out = capsys.readouterr().out
    assert code == 1
    assert "✓" in out and "created" in out and "Zephyr ZX-90 Service Manual" in out
    assert "locked.pdf: the PDF is encrypted with a password" in out
    assert "missing.pdf: no such file or directory" in out
    assert "2 manual(s) ingested into global manuals, 2 failed" in out
    rows = await _rows(bridge, fresh_db_url)
    assert [(r["source"], r["tenant_id"], r["manufacturer"]) for r in rows] == [
        ("Zephyr ZX-90 Service Manual", None, "Zephyr"), ("notes", None, "Zephyr")
    ]

    # Again: unchanged, nothing written.
    code = await _run("ingest", str(manuals / "zephyr"), "--manufacturer", "Zephyr")
    assert code == 0 and "unchanged" in capsys.readouterr().out

    # The server's service finds what the command ingested (index blob + rows).
    from ensemble.config import load_settings
    from ensemble.knowledge.service import open_knowledge_service
    from ensemble.persistence.objects import open_object_store

    settings = load_settings()
    async with open_database(bridge, fresh_db_url, min_size=1, max_size=2) as db, \
            open_object_store(settings, bridge) as objects, open_knowledge_service(settings, db, objects) as k:
        results = await k.search("code E7 outdoor fan", tenant_id=None)
        assert results[0].citation["page"] == 2
        assert k.statistics()["reindexed_documents"] == 0

    # list and delete
    code = await _run("list")
    assert code == 0 and "Zephyr ZX-90 Service Manual" in capsys.readouterr().out
    code = await _run("delete", str(rows[0]["id"]))
    assert code == 0 and "deleted Zephyr ZX-90 Service Manual" in capsys.readouterr().out
    assert [r["source"] for r in await _rows(bridge, fresh_db_url)] == ["notes"]


async def test_ingest_for_a_tenant_by_slug_and_samples(
    env: Path, tmp_path: Path, fresh_db_url: str, bridge: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_database(bridge, fresh_db_url, min_size=1, max_size=2) as db:
        tenant = await new_tenant(db)
        slug = await db.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant)
    pdf = tmp_path / "zx90.pdf"
    pdf.write_bytes(MANUAL_PDF)
    code = await _run("ingest", str(pdf), "--tenant", slug, "--source", "ZX-90 manual", "--category", "troubleshooting")
    assert code == 0, capsys.readouterr()
    rows = await _rows(bridge, fresh_db_url)
    assert [(r["source"], r["tenant_id"], r["category"]) for r in rows] == [("ZX-90 manual", tenant, "troubleshooting")]

    assert await _run("ingest", str(pdf), "--tenant", "no-such-tenant") == 1
    assert "no tenant with id or slug 'no-such-tenant'" in capsys.readouterr().err

    assert await _run("samples") == 0
    assert capsys.readouterr().out.count("created") == len(sample_documents())
    assert await _run("samples") == 0
    assert capsys.readouterr().out.count("unchanged") == len(sample_documents())
