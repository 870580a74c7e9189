"""``calbridge admin ...``: accounts for the admin web UI (roles ``admin`` and ``viewer``).

Passwords come from a hidden prompt (asked twice) or from an environment variable
(``--password-env VAR``, for scripts); they are stored as argon2 hashes only and never printed.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from calbridge.cli.common import console, print_json, session
from calbridge.errors import ConfigError, ValidationFailed
from calbridge.web.auth import create_admin, remove_admin, set_password
from calbridge.web.models import ROLES, AdminUser

app = typer.Typer(help="Admin accounts for the web UI.")


def _password(password_env: str | None) -> str:
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise ConfigError(f"--password-env: the environment variable {password_env} is not set")
        return value
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat it", hide_input=True) != first:
        raise ValidationFailed("the two passwords differ; nothing was changed")
    return str(first)


@app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="The admin's email address (their sign-in)")],
    role: Annotated[str, typer.Option("--role", help="|".join(ROLES))] = "admin",
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Read the password from this env var")
    ] = None,
) -> None:
    """Create an account for the web UI (``viewer``: read-only)."""
    if role not in ROLES:
        raise ValidationFailed(f"--role must be one of {', '.join(ROLES)}, not '{role}'")
    password = _password(password_env)
    with session() as s:
        admin = create_admin(s, email, password, role)
        address = admin.email
    console.print(f"Created {role} account {address}.", markup=False, highlight=False)


@app.command("password")
def password(
    email: str,
    password_env: Annotated[str | None, typer.Option("--password-env")] = None,
) -> None:
    """Set a new password (signs the account out everywhere)."""
    new = _password(password_env)
    with session() as s:
        set_password(s, email, new)
    console.print(f"Password of {email} changed.", markup=False, highlight=False)


@app.command("remove")
def remove(email: str) -> None:
    """Delete an account and its sessions."""
    with session() as s:
        remove_admin(s, email)
    console.print(f"Removed {email}.", markup=False, highlight=False)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Accounts with their role and last sign-in (never a password)."""
    with session() as s:
        rows = [
            {
                "email": a.email,
                "role": a.role,
                "created_at": a.created_at.isoformat() + "Z",
                "last_login_at": a.last_login_at.isoformat() + "Z" if a.last_login_at else None,
            }
            for a in s.scalars(select(AdminUser).order_by(AdminUser.email))
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("email", "role", "created", "last sign-in")
    for r in rows:
        table.add_row(
            escape(str(r["email"])), r["role"], r["created_at"], r["last_login_at"] or "never"
        )
    console.print(table)
