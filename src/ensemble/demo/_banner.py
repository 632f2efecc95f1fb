"""The start banner of ``ensemble serve --demo``: where to go, who to log in as."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ensemble.demo._seed import DemoSeed

__all__ = ["print_credentials"]


def print_credentials(seed: DemoSeed, console_url: str, *, file: TextIO | None = None) -> None:
    """A table of the demo users (role, name, email, password) and the console's URL, on stdout."""
    from rich.console import Console
    from rich.table import Table

    out = file or sys.stdout
    # Not a terminal (a log file, a pipe): wide enough that no cell wraps, so
    # every "email │ password" pair stays on one line for whoever reads it.
    console = Console(file=out, width=None if out.isatty() else 120, highlight=False)
    table = Table(title=f"Ensemble demo: {seed.tenant_name}", title_justify="left")
    # In a narrow terminal, role and name give way; email and password never
    # shrink (a truncated password is worse than none).
    table.add_column("role", no_wrap=True, overflow="ellipsis")
    table.add_column("name", no_wrap=True, overflow="ellipsis")
    table.add_column("email", no_wrap=True, min_width=max(len(u.email) for u in seed.users))
    table.add_column("password", no_wrap=True, min_width=max(len(u.password) for u in seed.users))
    for user in seed.users:
        table.add_row(user.role, user.name, user.email, user.password)
    console.print(table)
    console.print(f"console:     {console_url}")
    console.print(f"credentials: {seed.credentials_path}  (0600; delete the data directory to reset the demo)")
    console.print(f"hub:         {seed.hub_id}, printers: {', '.join(p.name for p in seed.printers)}")
    out.flush()
