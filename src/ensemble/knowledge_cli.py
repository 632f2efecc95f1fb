"""``ensemble knowledge``: manage the manuals of the knowledge base from the server machine.

::

    ensemble knowledge ingest manuals/ carrier.pdf --manufacturer Carrier     # global manuals
    ensemble knowledge ingest notes.md --tenant acme-hvac                       # one tenant's
    ensemble knowledge list [--tenant T]
    ensemble knowledge delete DOCUMENT_ID [--tenant T]
    ensemble knowledge samples                                                  # the bundled demo manuals

This is the only way to write *global* manuals (tenant admins upload their
own over REST).  It works on the database and object store directly; a
running server picks the change up when it next loads the scope (restart).
With the embedded Postgres, stop the server first: the data directory has
one owner at a time.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ensemble.cli import _settings, command
from ensemble.errors import EnsembleError

if TYPE_CHECKING:
    from ensemble.config import Settings
    from ensemble.knowledge.service import KnowledgeService

__all__ = ["SUFFIXES", "collect_files"]

SUFFIXES = frozenset({".pdf", ".md", ".markdown", ".txt", ".text"})
_CATEGORIES = ("specs", "installation", "charging", "operation", "troubleshooting", "maintenance", "general")


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="data directory (default ENSEMBLE_DATA_DIR or ./.ensemble)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ingest = sub.add_parser("ingest", help="add or update manuals (PDF, Markdown, text; directories recursively)")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--tenant", help="tenant id or slug (default: global manuals for every tenant)")
    ingest.add_argument("--source", help="name cited for the manual (default: its title or file name; one file only)")
    ingest.add_argument("--manufacturer")
    ingest.add_argument("--model")
    ingest.add_argument("--equipment-type")
    ingest.add_argument("--category", choices=_CATEGORIES, help="default: inferred per section")
    listing = sub.add_parser("list", help="list manuals (global, or global + a tenant's)")
    listing.add_argument("--tenant", help="tenant id or slug")
    delete = sub.add_parser("delete", help="delete a manual: its row, its file and its indexed passages")
    delete.add_argument("document_id", type=uuid.UUID)
    delete.add_argument("--tenant", help="tenant id or slug (default: a global manual)")
    sub.add_parser("samples", help="ingest the bundled sample manuals as global manuals (idempotent)")


@command("knowledge", "manage knowledge-base manuals (ingest, list, delete, samples)", _arguments)
def _run(args: argparse.Namespace) -> int:
    settings = _settings(args, data_dir=args.data_dir)
    actions = {"ingest": _ingest, "list": _list, "delete": _delete, "samples": _samples}
    return trio.run(actions[args.action], settings, args)


@asynccontextmanager
async def _open(settings: "Settings") -> AsyncIterator["KnowledgeService"]:
    from ensemble.knowledge.service import open_knowledge_service
    from ensemble.bridge import open_bridge
    from ensemble.persistence.database import open_database
    from ensemble.persistence.migrate import migrate
    from ensemble.persistence.objects import open_object_store
    from ensemble.server import resolve_dsn

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_bridge() as bridge, resolve_dsn(settings) as dsn:
        async with open_database(bridge, dsn, min_size=1, max_size=4) as db:
            await migrate(db)
            async with open_object_store(settings, bridge) as objects:
                async with open_knowledge_service(settings, db, objects, preload=False) as service:
                    yield service


async def _tenant(service: "KnowledgeService", ref: str | None) -> uuid.UUID | None:
    from ensemble.persistence.repos import knowledge as repo

    return None if ref is None else await service.db.run(repo.resolve_tenant, ref)


def collect_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The manuals under ``paths`` (directories recursively, sorted) and the paths that are not readable files."""
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return files, problems


async def _ingest(settings: "Settings", args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ensemble.knowledge.service import ManualFields

    console = Console()
    files, problems = collect_files(args.paths)
    for problem in problems:
        console.print(f"[red]✗[/red] {problem}")
    if args.source and len(files) > 1:
        console.print("[red]✗[/red] --source names one manual; give one file")
        return 2
    fields = ManualFields(
        source=args.source, manufacturer=args.manufacturer, model=args.model,
        equipment_type=args.equipment_type, category=args.category,
    )
    failed = len(problems)
    async with _open(settings) as service:
        tenant = await _tenant(service, args.tenant)
        where = "global manuals" if tenant is None else f"tenant {tenant}"
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"Ingesting into {where}", total=len(files))
            for path in files:
                progress.update(task, description=f"{path.name}")
                try:
                    data = await trio.to_thread.run_sync(path.read_bytes)
                    # One shard blob write at the end, not one per file.
                    outcome = await service.ingest(
                        data, filename=path.name, tenant_id=tenant, fields=fields, persist=False
                    )
                except EnsembleError as exc:
                    failed += 1
                    progress.console.print(f"[red]✗[/red] {path}: {exc.message}")
                except OSError as exc:
                    failed += 1
                    progress.console.print(f"[red]✗[/red] {path}: cannot read ({exc.strerror or exc})")
                else:
                    doc = outcome.document
                    progress.console.print(
                        f"[green]✓[/green] {path}: {outcome.outcome} [bold]{doc['source']}[/bold] "
                        f"({doc['pages']} pages, {doc['chunks']} passages) id {doc['id']}"
                    )
                progress.advance(task)
            progress.update(task, description="Writing the index")
            await service.flush()
    ok = len(files) - (failed - len(problems))
    console.print(f"{ok} manual(s) ingested into {where}, {failed} failed")
    return 1 if failed else 0


async def _list(settings: "Settings", args: argparse.Namespace) -> int:
    async with _open(settings) as service:
        tenant = await _tenant(service, args.tenant)
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await service.list_documents(viewer=tenant, limit=200, offset=offset)
            rows += page.items
            offset += page.limit
            if offset >= page.total:
                break
    # One line per manual, tab-separated: readable, and greppable for the id to delete.
    for row in rows:
        scope = "global" if row["tenant_id"] is None else f"tenant {row['tenant_id']}"
        product = " ".join(p for p in (row["manufacturer"], row["model"]) if p) or "-"
        print(f"{row['id']}\t{scope}\t{row['source']}\t{product}\t"
              f"{row['pages']} pages, {row['chunks']} passages\tv{row['version']}")
    print(f"{len(rows)} manual(s)")
    return 0


async def _delete(settings: "Settings", args: argparse.Namespace) -> int:
    async with _open(settings) as service:
        tenant = await _tenant(service, args.tenant)
        row = await service.delete_document(args.document_id, tenant_id=tenant)
    print(f"deleted {row['source']} ({row['id']})")
    return 0


async def _samples(settings: "Settings", args: argparse.Namespace) -> int:
    from ensemble.knowledge.service import ensure_sample_manuals

    async with _open(settings) as service:
        outcomes = await ensure_sample_manuals(service)
    for o in outcomes:
        print(f"{o.outcome:9} {o.document['source']}")
    return 0


if __name__ == "__main__":  # pragma: no cover - ``ensemble knowledge`` is the entry point
    from ensemble.cli import main

    sys.exit(main(["knowledge", *sys.argv[1:]]))
