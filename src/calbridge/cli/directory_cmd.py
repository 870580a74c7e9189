"""``calbridge directory import|export`` and ``calbridge check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from calbridge.cli.common import Rows, print_json, say, session, styled
from calbridge.errors import ConfigError
from calbridge.ops.directory import export_directory, import_directory
from calbridge.store.directory import shared_addresses
from calbridge.store.directory_schema import decode_directory, directory_json_schema
from calbridge.store.lookup import settings_problems, settings_warnings

app = typer.Typer(help="Import and export the CRM directory (companies, contacts, users).")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Directory JSON file", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse the file when addresses are shared")
    ] = False,
) -> None:
    """Validate FILE completely, then upsert it by id in one transaction.

    Every problem is listed with its JSON path and nothing is written when there is any
    (exit code 2). Importing the same file again changes nothing. Addresses that several users
    (or contacts) share are listed as warnings; with --strict they are problems.
    """
    text = decode_directory(file.read_bytes(), str(file))
    with session() as s:
        report = import_directory(s, text, actor="cli", strict=strict)
    if as_json:
        print_json(report.as_dict())
        return
    _warn([w.message() for w in report.warnings])
    table = Rows("kind", "created", "updated", "unchanged", title=f"Imported {file.name}")
    for kind in report.created:
        table.add(
            kind,
            str(report.created[kind]),
            str(report.updated[kind]),
            str(report.unchanged[kind]),
        )
    table.print()
    if report.settings_changed:
        say("Event System Settings updated.")
    if not report.changed:
        say("Nothing changed: the database already matched this file.")


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
        say(f"Wrote {output}")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the directory file format (see docs/directory.md)."""
    typer.echo(json.dumps(directory_json_schema(), ensure_ascii=False, indent=2))


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        say(("warning:", "yellow"), " ", warning, err=True)


def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Shared addresses are problems (exit 1)")
    ] = False,
) -> None:
    """Validate the stored configuration and directory, and say what to fix. Addresses that
    several users (or contacts) share are warnings (exit 0 unless --strict); so is a venue
    without a time zone (times typed without one are stored floating)."""
    with session() as s:
        problems = settings_problems(s)
        shared = [w.message() for w in shared_addresses(s)]
        warnings = settings_warnings(s)
    if strict:
        problems, shared = problems + shared, []
    warnings += shared
    if as_json:
        print_json({"ok": not problems, "problems": problems, "warnings": warnings})
        if problems:
            raise typer.Exit(1)
        return
    _warn(warnings)
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in the stored configuration: " + "; ".join(problems)
        )
    say(styled("ok", "green"), ": the booking system is configured for assignment and sync.")
