"""Embedded Postgres: works as root (unprivileged system user), reuses a running cluster."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from ensemble.persistence import embedded
from ensemble.persistence.embedded import EmbeddedPostgres, find_postgres_bin


def _query(dsn: str) -> str:
    async def run() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return str(await conn.fetchval("SELECT current_setting('listen_addresses')"))
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.mark.slow
def test_start_reuse_stop(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    pg = EmbeddedPostgres(tmp_path)
    dsn = pg.start()
    try:
        assert _query(dsn) == "127.0.0.1"
        if os.geteuid() == 0:
            owner = pg.pgdata.stat().st_uid
            assert owner != 0  # Postgres refuses root: an unprivileged user owns it
        # A second start finds the running cluster (as after a killed server).
        again = EmbeddedPostgres(tmp_path).start()
        assert again == dsn
        assert (tmp_path / "postgres-password").stat().st_mode & 0o077 == 0
    finally:
        pg.stop()
    assert not (pg.pgdata / "postmaster.pid").exists()


@pytest.mark.slow
def test_pgserver_binaries_work_as_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with only Python and pip: the pgserver wheel's Postgres."""
    pgserver = pytest.importorskip("pgserver")
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    monkeypatch.setattr(embedded.Path, "glob", lambda self, pattern: iter(()))
    assert find_postgres_bin() == Path(pgserver.__file__).parent / "pginstall" / "bin"
    pg = EmbeddedPostgres(tmp_path)
    monkeypatch.undo()  # useradd etc. need the real PATH; the binaries are already chosen
    try:
        assert _query(pg.start()) == "127.0.0.1"
    finally:
        pg.stop()


@pytest.mark.slow
def test_unreachable_data_dir_moves_the_cluster_when_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to another user")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)  # like /root: the Postgres user cannot enter
    pg = EmbeddedPostgres(locked / "data")
    dsn = pg.start()
    try:
        assert str(pg.root).startswith(str(embedded.SYSTEM_ROOT))
        assert _query(dsn) == "127.0.0.1"
        # The same data directory finds the same cluster next time.
        assert EmbeddedPostgres(locked / "data").start() == dsn
    finally:
        pg.stop()
