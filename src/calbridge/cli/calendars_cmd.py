"""``calbridge calendars ...``: link, inspect and remove calendars."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.cli.common import console, print_json, session
from calbridge.config import load_settings
from calbridge.domain.merge import POLICIES
from calbridge.errors import ConfigError, NotFound
from calbridge.store.models import Calendar, Link, Rejection
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar

app = typer.Typer(help="Calendars kept in sync with the booking system.")


def find_calendar(s: Session, name: str) -> Calendar:
    calendar = s.scalars(select(Calendar).where(Calendar.name == name)).first()
    if calendar is None:
        raise NotFound(f"no calendar is called '{name}' (see `calbridge calendars list`)")
    return calendar


def _read_password(password_env: str | None, password_file: Path | None) -> str:
    if (password_env is None) == (password_file is None):
        raise ConfigError("give exactly one of --password-env VAR or --password-file FILE")
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise ConfigError(f"--password-env: the environment variable {password_env} is not set")
        return value
    assert password_file is not None
    try:
        return password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"--password-file: cannot read {password_file}: {exc.strerror}") from exc


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short name for this calendar")],
    caldav: Annotated[str | None, typer.Option("--caldav", help="CalDAV collection URL")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_env: Annotated[str | None, typer.Option("--password-env", help="Env var")] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="User id owning it")] = None,
    policy: Annotated[str, typer.Option("--policy", help="|".join(POLICIES))] = "booking-wins",
    direction: Annotated[str, typer.Option("--direction", help="both|pull|push")] = "both",
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, max=3650)] = 365,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Link a calendar, after checking that it can be reached with these credentials."""
    if caldav is None:
        raise ConfigError("give the calendar's address: --caldav URL")
    password = _read_password(password_env, password_file)
    box = SecretBox.from_settings(load_settings())
    with session() as s:
        calendar = add_caldav_calendar(
            s,
            box,
            name,
            caldav,
            username or "",
            password,
            owner=owner,
            policy=policy,
            direction=direction,
            horizon_days=horizon_days,
        )
        data = calendar_json(s, calendar)
    print_json(data) if as_json else console.print(f"Added calendar '{name}' ({caldav}).")


def calendar_json(s: Session, c: Calendar) -> dict[str, Any]:
    counts = dict(
        s.execute(
            select(Link.state, func.count()).where(Link.calendar_id == c.id).group_by(Link.state)
        ).all()
    )
    rejections = s.scalar(select(func.count()).where(Rejection.calendar_id == c.id)) or 0
    settings = dict(c.settings or {})
    return {
        "name": c.name,
        "kind": c.kind,
        "url": settings.get("url"),
        "username": settings.get("username"),
        "owner": c.owner_user_id,
        "policy": c.policy,
        "direction": c.direction,
        "horizon_days": c.horizon_days,
        "token": "set" if c.sync_token else "none (next sync is a full sync)",
        "last_sync_at": c.last_sync_at.isoformat() + "Z" if c.last_sync_at else None,
        "last_error": c.last_error,
        "last_report": c.last_report,
        "links": {state: int(n) for state, n in counts.items()},
        "rejections": int(rejections),
    }


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every linked calendar (secrets are never printed)."""
    with session() as s:
        rows = [calendar_json(s, c) for c in s.scalars(select(Calendar).order_by(Calendar.name))]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "kind", "url", "owner", "policy", "direction", "last sync", "error")
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["url"] or "",
            r["owner"] or "—",
            r["policy"],
            r["direction"],
            r["last_sync_at"] or "never",
            (r["last_error"] or "")[:60],
        )
    console.print(table)


@app.command("show")
def show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One calendar: last sync, token state, counts, last error."""
    with session() as s:
        data = calendar_json(s, find_calendar(s, name))
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in data.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("remove")
def remove(name: str) -> None:
    """Unlink a calendar. Its bookings stay in the booking system; their links go."""
    with session() as s:
        calendar = find_calendar(s, name)
        s.execute(Link.__table__.delete().where(Link.calendar_id == calendar.id))
        s.delete(calendar)
    console.print(f"Removed calendar '{name}'; its bookings stay.")
