"""All the admin CLI prints: Rich tables for people, plain JSON for scripts (`--json`: the
answer alone on stdout), and the one-line errors on stderr. Commands hand their results here
and never print themselves, so the two forms cannot drift apart."""

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

WIDE = 200
"""Width of the tables when stdout is not a terminal (a pipe, a file): nothing is squeezed to
80 columns there; COLUMNS, when set, still wins."""

stdout = Console(
    highlight=False,
    width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else WIDE,
)
stderr = Console(stderr=True, highlight=False)

WHOLE = {"id", "execution", "path"}
"""Columns never wrapped (the ids a reader copies); the others fold to fit the terminal."""

INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
"""A time as the config API writes it; shown to the second (--json keeps it whole)."""


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
    if isinstance(value, str) and INSTANT.fullmatch(value):
        return value[:19].replace("T", " ") + "Z"
    return str(value)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    optional: Sequence[str] = (),
) -> None:
    """A table; the `optional` columns only when some row has a value in them (a terminal is
    narrow, and ids are never cut)."""
    rows = [list(row) for row in rows]
    shown = [
        index
        for index, column in enumerate(columns)
        if column not in optional or any(row[index] is not None for row in rows)
    ]
    columns = [columns[index] for index in shown]
    rows = [[row[index] for index in shown] for row in rows]
    grid = Table(title=title, title_justify="left")
    for column in columns:
        whole = column in WHOLE
        grid.add_column(
            column,
            no_wrap=whole,
            overflow="fold",
            min_width=32 if whole and column != "path" else None,
        )
    for row in rows:
        grid.add_row(*(escape(cell(value)) for value in row))
    stdout.print(grid)


def fields(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
    """A record as a two-column table of its fields."""
    grid = Table(show_header=False, title=title, title_justify="left")
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(name, escape(cell(value)))
    stdout.print(grid)


def say(text: str) -> None:
    """A sentence for people (not printed with --json)."""
    stdout.print(text, markup=False)
