"""``calbridge directory import|export`` and ``calbridge check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from calbridge.cli.common import console, print_json, session
from calbridge.errors import ConfigError
from calbridge.ops.directory import export_directory, import_directory
from calbridge.store.lookup import settings_problems

app = typer.Typer(help="Import and export the CRM directory (companies, contacts, users).")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Directory JSON file", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report")] = False,
) -> None:
    """Validate FILE completely, then upsert it by id in one transaction.

    Every problem is listed with its JSON path and nothing is written when there is any
    (exit code 2). Importing the same file again changes nothing.
    """
    text = file.read_text(encoding="utf-8")
    with session() as s:
        report = import_directory(s, text, actor="cli")
    if as_json:
        print_json(report.as_dict())
        return
    table = Table("kind", "created", "updated", "unchanged", title=f"Imported {file.name}")
    for kind in report.created:
        table.add_row(
            kind,
            str(report.created[kind]),
            str(report.updated[kind]),
            str(report.unchanged[kind]),
        )
    console.print(table)
    if report.settings_changed:
        console.print("Event System Settings updated.")
    if not report.changed:
        console.print("Nothing changed: the database already matched this file.")


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
    ] = None,
) -> None:
    """Write the whole directory in the import format (an exact round trip)."""
    with session() as s:
        data = export_directory(s)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote {output}")


def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report")] = False,
) -> None:
    """Validate the stored configuration and say what to fix."""
    with session() as s:
        problems = settings_problems(s)
    if as_json:
        print_json({"ok": not problems, "problems": problems})
        if problems:
            raise typer.Exit(1)
        return
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in the stored configuration: " + "; ".join(problems)
        )
    console.print("[green]ok[/]: the booking system is configured for assignment and sync.")
