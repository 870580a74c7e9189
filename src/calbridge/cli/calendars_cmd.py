"""``calbridge calendars ...``: link, inspect and remove calendars.

``add`` and ``update`` know no calendar API: their connection options are those of every kind
in :mod:`calbridge.providers.registry` (a new kind's options appear here by themselves), read
by the registry and handed to :func:`calbridge.sync.calendars.add_calendar` /
:func:`~calbridge.sync.calendars.update_calendar`. ``auth`` is Google's OAuth consent."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.cli.common import Rows, print_json, readable, say, session, store
from calbridge.config import load_settings
from calbridge.domain.merge import POLICIES
from calbridge.errors import CalbridgeError, ConfigError
from calbridge.providers.registry import (
    Connection,
    ConnectRequest,
    ProviderKind,
    all_kinds,
    cli_options,
    from_json_file,
    kind_for_selector,
    kind_of,
    read_values,
)
from calbridge.store.models import Calendar, Link, Rejection
from calbridge.store.secrets import SecretBox
from calbridge.sync.assistant import AssistantChange, apply_assistant, assistant_json
from calbridge.sync.calendars import (
    CalendarUpdate,
    add_calendar,
    authorize_google_calendar,
    update_calendar,
)
from calbridge.sync.calendars import (
    find_calendar as find_calendar,
)

app = typer.Typer(help="Calendars kept in sync with the booking system.")


# The options every kind shares; each kind's connection options come from the registry
Owner = Annotated[str | None, typer.Option("--owner", help="User id owning it")]
AsJson = Annotated[bool, typer.Option("--json")]


def _connection_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per connection option of every registered kind (``None``: not
    given), grouped in the help by the kind that uses it."""
    users: dict[str, list[str]] = {}
    for entry in all_kinds():
        for option in entry.all_options:
            users.setdefault(option.flag, []).append(entry.label)
    parameters = []
    for option in cli_options():
        kinds = users[option.flag]
        panel = f"{kinds[0]} connection" if len(kinds) == 1 else "Connection (several kinds)"
        if option.switch:
            decls = (f"{option.flag}/--no-{option.flag[2:]}",)
            info = typer.Option(*decls, help=option.help, rich_help_panel=panel)
            annotation: Any = Annotated[bool | None, info]
        else:
            info = typer.Option(
                option.flag, help=option.help, metavar=option.metavar, rich_help_panel=panel
            )
            annotation = Annotated[str | None, info]
        parameters.append(
            inspect.Parameter(
                option.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    return parameters


def _with_connection_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` taking, besides its own parameters, every kind's connection options as
    keyword arguments, handed to it as ``connection`` (value by flag, None when not given)."""
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.name != "connection"
    ]
    extra = _connection_parameters()

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        by_param = {option.param: option.flag for option in cli_options()}
        connection = {by_param[key]: kwargs.pop(key) for key in list(kwargs) if key in by_param}
        command(**kwargs, connection=connection)

    wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
    del wrapper.__wrapped__
    return wrapper


def _preview(kind: ProviderKind[Any], request: ConnectRequest) -> Connection | None:
    """The connection these options make, before anything is stored: for warnings (a
    password sent in clear) and to know whether it can be checked now. None when the options
    are wrong (the add or update itself then says why)."""
    try:
        return kind.make(request)
    except CalbridgeError:
        return None


def _warn(kind: ProviderKind[Any], connection: Connection | None) -> None:
    """One stderr line per warning the kind has about these settings."""
    if connection is None or kind.warnings is None:
        return
    for warning in kind.warnings(connection.settings):
        say(("warning:", "yellow"), " ", warning, err=True)


Export = Annotated[
    str | None,
    typer.Option(
        "--export",
        help="locations (one appointment per booked location), days or event (publish-only)",
    ),
]
RoomsAsResources = Annotated[
    bool | None,
    typer.Option(
        "--rooms-as-resources/--no-rooms-as-resources",
        help="Invite each booked room's resource (Google/Exchange room, CalDAV CUTYPE=ROOM)",
    ),
]
Title = Annotated[
    str | None,
    typer.Option(
        "--title",
        help="Publish-only: appointment title, e.g. '{event_name} ({client})'; merge fields "
        "{event_name} {booking_id} {location} {client} {status}; '' clears it",
    ),
]
OnlyStatus = Annotated[
    list[str] | None, typer.Option("--only-status", help="Carry bookings of this status")
]
OnlyLocation = Annotated[
    list[str] | None, typer.Option("--only-location", help="Carry bookings of this room (id)")
]
OnlyClient = Annotated[
    list[str] | None, typer.Option("--only-client", help="Carry this client's bookings")
]
OnlyManager = Annotated[
    list[str] | None,
    typer.Option("--only-manager", help="Carry bookings this user manages (user id)"),
]
Room = Annotated[
    str | None,
    typer.Option("--room", help="This is that room's own calendar (location id); '' clears"),
]


def _assistant(
    export: str | None,
    rooms_as_resources: bool | None,
    title: str | None,
    statuses: list[str] | None,
    locations: list[str] | None,
    clients: list[str] | None,
    managers: list[str] | None,
    room: str | None,
    *,
    no_filters: bool = False,
) -> AssistantChange:
    given = {
        "statuses": statuses or [],
        "locations": locations or [],
        "clients": clients or [],
        "managers": managers or [],
    }
    filters: dict[str, list[str]] | None = None
    if any(given.values()):
        if no_filters:
            raise ConfigError("give --only-… filters or --no-filters, not both")
        filters = {k: v for k, v in given.items() if v}
    elif no_filters:
        filters = {}
    return AssistantChange(export, rooms_as_resources, title, filters, room)


def add(
    name: Annotated[str, typer.Argument(help="A short name for this calendar")],
    owner: Owner = None,
    policy: Annotated[str, typer.Option("--policy", help="|".join(POLICIES))] = "booking-wins",
    direction: Annotated[str, typer.Option("--direction", help="both|pull|push")] = "both",
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, max=3650)] = 365,
    as_json: AsJson = False,
    export: Export = None,
    rooms_as_resources: RoomsAsResources = None,
    title: Title = None,
    only_status: OnlyStatus = None,
    only_location: OnlyLocation = None,
    only_client: OnlyClient = None,
    only_manager: OnlyManager = None,
    room: Room = None,
    *,
    connection: dict[str, Any],
) -> None:
    """Link a calendar, after checking that it can be reached with these credentials. Give
    exactly one of the kinds' calendar options (--caldav URL, --google CALENDAR_ID, --graph
    MAILBOX, …) with that kind's other options."""
    assistant = _assistant(
        export,
        rooms_as_resources,
        title,
        only_status,
        only_location,
        only_client,
        only_manager,
        room,
    )
    with session() as s:  # refuse bad assistant options before anything is stored
        apply_assistant(s, Calendar(name=name, direction=direction), assistant)
    kind = kind_for_selector(connection)
    values = read_values(kind, connection)
    preview = _preview(kind, ConnectRequest(name, values))
    _warn(kind, preview)
    box = SecretBox.from_settings(load_settings())
    with session() as s:
        calendar = add_calendar(
            s,
            box,
            name,
            kind.name,
            values,
            owner=owner,
            policy=policy,
            direction=direction,
            horizon_days=horizon_days,
        )
        apply_assistant(s, calendar, assistant)
        where = _where_of(calendar)
        data = calendar_json(s, calendar)
    if as_json:
        print_json(data)
        return
    say(f"Added calendar '{name}' ({kind.label}: {where}).")
    if preview is not None and not preview.checkable and kind.unchecked is not None:
        say(kind.unchecked(name))


app.command("add")(_with_connection_options(add))


def _read_json(path: Path, option: str) -> dict[str, Any]:
    return from_json_file(str(path), option)


@app.command("auth")
def auth(
    name: Annotated[str, typer.Argument(help="A Google calendar linked with --oauth-client")],
    authorized_user: Annotated[
        Path | None,
        typer.Option(
            "--authorized-user",
            help="Use this authorized_user JSON (client + refresh token) instead of a browser",
        ),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the consent URL; open it yourself")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Local port for Google's redirect")
    ] = 0,
    timeout: Annotated[
        int, typer.Option("--timeout", min=1, help="Seconds to wait for the browser")
    ] = 300,
) -> None:
    """Authorize calbridge to use a Google calendar (installed-app loopback flow); the refresh
    token is stored encrypted."""
    from calbridge.providers.google.auth import OAuthClient, read_oauth_client
    from calbridge.providers.google.consent import run_consent_flow

    box = SecretBox.from_settings(load_settings())
    with session() as s:
        calendar = find_calendar(s, name)
        secret = box.open(calendar.secret, f"calendar '{name}'") if calendar.secret else {}
    client: dict[str, str] | None = None
    if authorized_user is not None:
        data = _read_json(authorized_user, "--authorized-user")
        found, token = read_oauth_client(data, f"--authorized-user {authorized_user}")
        if token is None:
            raise ConfigError(f"--authorized-user: {authorized_user} holds no refresh_token")
        client = found.as_dict()
    else:
        stored = secret.get("oauth_client")
        if not stored:
            raise ConfigError(
                f"calendar '{name}' has no OAuth client; link it with `calbridge calendars add "
                f"{name} --google CALENDAR_ID --oauth-client FILE`"
            )
        token = run_consent_flow(
            OAuthClient(**stored),
            name,
            show=_show_consent_url,
            open_browser=not no_browser,
            port=port,
            timeout=timeout,
        )
    with session() as s:
        authorize_google_calendar(box, find_calendar(s, name), token, oauth_client=client)
    say(f"Authorized calendar '{name}'; its refresh token is stored encrypted.")


def _show_consent_url(url: str, opened: bool) -> None:
    """The consent URL alone on its line (copyable, and flushed: a pipe sees it at once)."""
    if opened:
        typer.echo("Your browser shows Google's consent page; if it did not open, go to:")
    else:
        typer.echo("Open this address in a browser signed in to the calendar's Google account:")
    typer.echo(url)
    typer.echo("Waiting for Google's answer (Ctrl-C to stop)...")


def calendar_json(s: Session, c: Calendar) -> dict[str, Any]:
    counts = dict(
        s.execute(
            select(Link.state, func.count()).where(Link.calendar_id == c.id).group_by(Link.state)
        ).all()
    )
    rejections = s.scalar(select(func.count()).where(Rejection.calendar_id == c.id)) or 0
    settings = dict(c.settings or {})
    data: dict[str, Any] = {
        "name": c.name,
        "kind": c.kind,
        "url": settings.get("url"),
        "username": settings.get("username"),
        "mailbox": settings.get("mailbox"),
        "where": _where_of(c),
    }
    for entry in all_kinds():  # each kind's own settings under its name (never a secret)
        if entry.public is not None:
            data[entry.name] = (
                entry.public_settings(c.name, c.settings) if c.kind == entry.name else None
            )
    return data | {
        "owner": c.owner_user_id,
        "policy": c.policy,
        "direction": c.direction,
        "horizon_days": c.horizon_days,
        "assistant": assistant_json(c),
        "token": "set" if c.sync_token else "none (next sync is a full sync)",
        "last_sync_at": c.last_sync_at.isoformat() + "Z" if c.last_sync_at else None,
        "last_error": c.last_error,
        "last_report": c.last_report,
        "links": {state: int(n) for state, n in counts.items()},
        "rejections": int(rejections),
    }


def _where_of(c: Calendar) -> str:
    """The calendar's address in one column: CalDAV URL, mailbox, Google calendar id…"""
    try:
        entry = kind_of(c.kind)
        return entry.where(entry.parse(c.name, c.settings))
    except CalbridgeError:
        return ""


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every linked calendar (secrets are never printed)."""
    with session() as s:
        rows = [calendar_json(s, c) for c in s.scalars(select(Calendar).order_by(Calendar.name))]
    if as_json:
        print_json(rows)
        return
    table = Rows("name", "kind", "where", "owner", "policy", "direction", "last sync", "error")
    for r in rows:
        table.add(
            r["name"],
            r["kind"],
            r["where"],
            r["owner"],
            r["policy"],
            r["direction"],
            r["last_sync_at"] or "never",
            r["last_error"] or "",
        )
    table.print()


def _counts(counts: dict[str, Any]) -> str:
    """``{"synced": 3, "pending": 1}`` as "synced 3, pending 1" ("none" when empty)."""
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none"


def _report_summary(report: dict[str, Any] | None) -> str:
    """The last sync report in one line: its non-zero figures, then ok or the error."""
    if not report:
        return "none"
    figures = ["pulled", "created", "updated", "cancelled", "pushed_created", "pushed_updated"]
    figures += ["pushed_deleted", "conflicts", "rejected", "failed", "requests"]
    parts = [f"{key.replace('_', ' ')} {report[key]}" for key in figures if report.get(key)]
    if report.get("full_resync"):
        parts.append("full resync")
    parts.append("ok" if report.get("ok", True) else f"failed: {report.get('error')}")
    return ", ".join(parts)


def show_fields(data: dict[str, Any]) -> Rows:
    """``calendars show`` as readable fields: nested settings flattened, absent ones left out,
    counts and the last report in words."""
    rows = Rows(fields=True)
    rows.add("name", data["name"])
    rows.add("kind", data["kind"])
    for key in ("url", "username", "mailbox"):
        if data.get(key) is not None:
            rows.add(key, data[key])
    for key, value in (data.get(str(data["kind"])) or {}).items():
        if value is not None:
            rows.add(key.replace("_", " "), readable(value))
    rows.add("owner", data["owner"] or "none")
    rows.add("policy", data["policy"])
    rows.add("direction", data["direction"])
    rows.add("horizon", f"{data['horizon_days']} days")
    assistant = data["assistant"]
    rows.add("export", assistant["export"])
    rows.add("rooms as resources", "yes" if assistant["rooms_as_resources"] else "no")
    if assistant["title_template"]:
        rows.add("title", assistant["title_template"])
    if assistant["room"]:
        rows.add("room", assistant["room"])
    for key, values in assistant["filters"].items():
        rows.add(f"only {key}", ", ".join(values))
    rows.add("sync token", data["token"])
    rows.add("last sync", data["last_sync_at"] or "never")
    rows.add("last error", data["last_error"] or "none")
    rows.add("last report", _report_summary(data.get("last_report")))
    rows.add("links", _counts(data["links"]))
    rows.add("rejections", str(data["rejections"]))
    return rows


@app.command("show")
def show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One calendar: last sync, token state, counts, last error."""
    with session() as s:
        data = calendar_json(s, find_calendar(s, name))
    if as_json:
        print_json(data)
        return
    show_fields(data).print()


def update(
    name: Annotated[str, typer.Argument(help="The calendar to change")],
    owner: Owner = None,
    no_owner: Annotated[bool, typer.Option("--no-owner", help="It has no owner")] = False,
    policy: Annotated[str | None, typer.Option("--policy", help="|".join(POLICIES))] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="both|pull|push")] = None,
    horizon_days: Annotated[int | None, typer.Option("--horizon-days", min=1, max=3650)] = None,
    as_json: AsJson = False,
    export: Export = None,
    rooms_as_resources: RoomsAsResources = None,
    title: Title = None,
    only_status: OnlyStatus = None,
    only_location: OnlyLocation = None,
    only_client: OnlyClient = None,
    only_manager: OnlyManager = None,
    no_filters: Annotated[
        bool, typer.Option("--no-filters", help="Carry no bookings by filter any more")
    ] = False,
    room: Room = None,
    *,
    connection: dict[str, Any],
) -> None:
    """Change a calendar's credentials or settings in place (checked like `add`); its links,
    sync token and snapshots are kept. Only the options of the calendar's own kind apply. Any
    --only-… option replaces all the filters."""
    with session() as s:
        current = find_calendar(s, name)
        kind, settings = kind_of(current.kind), dict(current.settings or {})
    values = read_values(kind, connection, calendar=name)
    if values:
        _warn(kind, _preview(kind, ConnectRequest(name, values, settings=settings)))
    change = CalendarUpdate(
        owner=owner,
        clear_owner=no_owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        connection=values,
        assistant=_assistant(
            export,
            rooms_as_resources,
            title,
            only_status,
            only_location,
            only_client,
            only_manager,
            room,
            no_filters=no_filters,
        ),
    )
    box = SecretBox.from_settings(load_settings())
    with session() as s:
        data = calendar_json(s, update_calendar(s, box, name, change))
    print_json(data) if as_json else say(f"Updated calendar '{name}'.")


app.command("update")(_with_connection_options(update))


@app.command("remove")
def remove(name: str) -> None:
    """Unlink a calendar. Its bookings stay in the booking system; its links are kept aside,
    so that linking the same calendar again adopts its events instead of duplicating them."""
    from calbridge.ops.calendars import unlink_calendar

    done = unlink_calendar(store(), SecretBox.from_settings(load_settings()), name, actor="cli")
    say(f"Removed calendar '{name}'; its bookings stay.")
    if done.channel_note:
        say(f"Note: {done.channel_note}.", err=True)
