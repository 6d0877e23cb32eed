"""All the admin CLI prints: Rich tables for people, plain JSON for scripts (`--json`: the
answer alone on stdout), and the one-line errors on stderr. Commands hand their results here
and never print themselves, so the two forms cannot drift apart."""

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One line on stderr, taken literally (no Rich markup in it)."""
    stderr.print(f"hookflow: {message}", markup=False, soft_wrap=True)


def json_out(data: Any) -> None:
    """The answer as JSON, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    grid = Table(*columns, title=title, title_justify="left")
    for row in rows:
        grid.add_row(*(escape(cell(value)) for value in row))
    stdout.print(grid)


def fields(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """A record as a two-column table of its fields."""
    grid = Table(show_header=False, title=title, title_justify="left")
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in pairs:
        grid.add_row(name, escape(cell(value)))
    stdout.print(grid)


def say(text: str) -> None:
    """A sentence for people (not printed with --json)."""
    stdout.print(text, markup=False)
