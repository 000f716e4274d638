"""Printing data (stdout: table, json or yaml) and diagnostics (stderr), honouring NO_COLOR."""

from __future__ import annotations

import io
import json
import sys
from typing import Any, Iterable, Sequence

import click
from rich.console import Console
from rich.table import Table
from ruamel.yaml import YAML

OUTPUT_OPTION = click.option(
    "-o", "--output", "output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True,
    help="Output format.",
)


def stdout() -> Console:
    # Off a terminal, never truncate: tables end up in logs and pipes.
    return Console(file=sys.stdout, soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 1000)


def stderr() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def to_yaml(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def emit(data: Any, output: str) -> None:
    """Print machine-readable data (json or yaml) on stdout."""
    text = to_json(data) + "\n" if output == "json" else to_yaml(data)
    sys.stdout.write(text)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """Print a plain table on stdout (no box lines, so it stays readable in logs and pipes)."""
    grid = Table(box=None, title=title, title_justify="left", header_style="bold", pad_edge=False)
    for column in columns:
        grid.add_column(column.upper())
    for row in rows:
        grid.add_row(*("-" if cell is None else str(cell) for cell in row))
    stdout().print(grid)


def info(message: str) -> None:
    """A diagnostic line on stderr."""
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
