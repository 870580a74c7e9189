"""``calbridge tokens create|list|revoke``: API tokens for the REST API (``/api``).

A token is printed once, when it is created; only its digest is stored. ``--read-only`` tokens
can read everything and write nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from calbridge.cli.common import console, print_json, session
from calbridge.service.tokens import create_token, list_tokens, revoke_token

app = typer.Typer(help="API tokens for the REST API (shown once, stored hashed).")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the token, e.g. 'booking-site'")],
    read_only: Annotated[
        bool, typer.Option("--read-only", help="The token can read but not write")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Create a token and print it once (it cannot be shown again)."""
    with session() as s:
        info, token = create_token(s, name, read_only=read_only, actor="cli")
    if as_json:
        print_json({**info.as_dict(), "token": token})
        return
    kind = "read-only" if read_only else "read-write"
    console.print(
        f"Created {kind} API token '{name}'. Copy it now; it is not shown again:",
        markup=False,
        highlight=False,
    )
    typer.echo(token)
    console.print("Use it as the header  Authorization: Bearer <token>", markup=False)


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every token: name, first characters, read-only or not, created, last used."""
    with session() as s:
        tokens = list_tokens(s)
    if as_json:
        print_json([t.as_dict() for t in tokens])
        return
    table = Table("name", "starts with", "access", "created", "last used")
    for t in tokens:
        table.add_row(
            t.name,
            t.hint + "…",
            "read-only" if t.read_only else "read-write",
            t.created_at.isoformat() + "Z",
            t.last_used_at.isoformat() + "Z" if t.last_used_at else "never",
        )
    console.print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name")]) -> None:
    """Revoke a token: requests presenting it are refused from now on."""
    with session() as s:
        revoke_token(s, name, actor="cli")
    console.print(f"Revoked API token '{name}'.", markup=False, highlight=False)
