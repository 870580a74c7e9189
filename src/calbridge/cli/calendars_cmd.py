"""``calbridge calendars ...``: link, inspect and remove calendars."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.cli.common import Rows, print_json, readable, say, session
from calbridge.config import load_settings
from calbridge.domain.merge import POLICIES
from calbridge.errors import ConfigError
from calbridge.providers.caldav.http import cleartext_warning
from calbridge.providers.http_client import check_http_url
from calbridge.store.models import Calendar, Link, Rejection
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import (
    CalendarUpdate,
    add_caldav_calendar,
    add_google_calendar,
    add_graph_calendar,
    authorize_google_calendar,
    remove_calendar,
    update_calendar,
)
from calbridge.sync.calendars import (
    find_calendar as find_calendar,
)

app = typer.Typer(help="Calendars kept in sync with the booking system.")


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


# The connection options `add` and `update` share (with `update`, None leaves a setting as it is)
CalDAVUrl = Annotated[str | None, typer.Option("--caldav", help="CalDAV collection URL")]
Username = Annotated[str | None, typer.Option("--username")]
PasswordEnv = Annotated[str | None, typer.Option("--password-env", help="Env var")]
PasswordFile = Annotated[Path | None, typer.Option("--password-file")]
Owner = Annotated[str | None, typer.Option("--owner", help="User id owning it")]
Mailbox = Annotated[str | None, typer.Option("--graph", help="Microsoft 365 mailbox")]
Tenant = Annotated[str | None, typer.Option("--tenant", help="Entra tenant id/domain")]
ClientId = Annotated[str | None, typer.Option("--client-id", help="App (client) id")]
ClientSecretEnv = Annotated[
    str | None, typer.Option("--client-secret-env", help="Env var with the app's secret")
]
Certificate = Annotated[
    Path | None, typer.Option("--certificate", help="PEM: the app's key + certificate")
]
CalendarId = Annotated[str | None, typer.Option("--calendar-id")]
ApiBase = Annotated[str | None, typer.Option("--api-base", help="API root URL")]
LoginBase = Annotated[str | None, typer.Option("--login-base", help="Identity URL")]
CaFile = Annotated[Path | None, typer.Option("--ca-file", help="Extra trusted CA")]
GoogleId = Annotated[str | None, typer.Option("--google", help="Google calendar id")]
ServiceAccount = Annotated[
    Path | None, typer.Option("--service-account", help="Google service-account key (JSON)")
]
Subject = Annotated[str | None, typer.Option("--subject", help="User the service account acts as")]
OAuthClientFile = Annotated[
    Path | None, typer.Option("--oauth-client", help="Google OAuth client file (JSON)")
]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short name for this calendar")],
    caldav: CalDAVUrl = None,
    username: Username = None,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    owner: Owner = None,
    policy: Annotated[str, typer.Option("--policy", help="|".join(POLICIES))] = "booking-wins",
    direction: Annotated[str, typer.Option("--direction", help="both|pull|push")] = "both",
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, max=3650)] = 365,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    graph: Mailbox = None,
    tenant: Tenant = None,
    client_id: ClientId = None,
    client_secret_env: ClientSecretEnv = None,
    certificate: Certificate = None,
    calendar_id: CalendarId = None,
    api_base: ApiBase = None,
    login_base: LoginBase = None,
    ca_file: CaFile = None,
    google: GoogleId = None,
    service_account: ServiceAccount = None,
    subject: Subject = None,
    oauth_client: OAuthClientFile = None,
) -> None:
    """Link a calendar, after checking that it can be reached with these credentials."""
    if sum(value is not None for value in (caldav, graph, google)) != 1:
        raise ConfigError(
            "give exactly one of --caldav URL, --graph MAILBOX or --google CALENDAR_ID"
        )
    for option, url in (
        ("--caldav", caldav),
        ("--api-base", api_base),
        ("--login-base", login_base),
    ):
        if url is not None:
            check_http_url(url, option)
    if google is not None:
        options = dict(owner=owner, policy=policy, direction=direction, horizon_days=horizon_days)
        needs_auth = _add_google(
            name, google, service_account, subject, oauth_client, api_base, options
        )
        with session() as s:
            data = calendar_json(s, find_calendar(s, name))
        if as_json:
            print_json(data)
            return
        say(f"Added calendar '{name}' (Google: {google}).")
        if needs_auth:
            say(f"Next, authorize it: `calbridge calendars auth {name}`.")
        return
    if graph is not None:
        secret, pem = _graph_credential(client_secret_env, certificate)
        box = SecretBox.from_settings(load_settings())
        with session() as s:
            calendar = add_graph_calendar(
                s,
                box,
                name,
                graph,
                tenant=_required(tenant, "--tenant"),
                client_id=_required(client_id, "--client-id"),
                client_secret=secret,
                certificate_pem=pem,
                calendar_id=calendar_id,
                api_base=api_base,
                login_base=login_base,
                ca_file=str(ca_file) if ca_file is not None else None,
                owner=owner,
                policy=policy,
                direction=direction,
                horizon_days=horizon_days,
            )
            data = calendar_json(s, calendar)
        print_json(data) if as_json else say(f"Added calendar '{name}' ({graph}).")
        return
    assert caldav is not None
    password = _read_password(password_env, password_file)
    _warn_cleartext(caldav, username or "")
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
    print_json(data) if as_json else say(f"Added calendar '{name}' ({caldav}).")


def _warn_cleartext(url: str, username: str) -> None:
    """One stderr line when the password would cross the network unencrypted."""
    warning = cleartext_warning(url, username)
    if warning:
        say(("warning:", "yellow"), " ", warning, err=True)


def _required(value: str | None, option: str) -> str:
    if not value:
        raise ConfigError(f"a Microsoft 365 calendar needs {option}")
    return value


def _graph_credential(
    secret_env: str | None, certificate: Path | None
) -> tuple[str | None, str | None]:
    """(client secret, certificate PEM): one of them, the secret read from the environment."""
    if (secret_env is None) == (certificate is None):
        raise ConfigError("give exactly one of --client-secret-env VAR or --certificate FILE")
    if secret_env is not None:
        value = os.environ.get(secret_env)
        if not value:
            raise ConfigError(
                f"--client-secret-env: the environment variable {secret_env} is unset"
            )
        return value, None
    assert certificate is not None
    try:
        return None, certificate.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--certificate: cannot read {certificate}: {exc}") from exc


def _read_json(path: Path, option: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{option}: cannot read {path} as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{option}: {path} does not hold a JSON object")
    return data


def _add_google(
    name: str,
    calendar_id: str,
    service_account: Path | None,
    subject: str | None,
    oauth_client: Path | None,
    api_base: str | None,
    options: dict[str, Any],
) -> bool:
    """Link the calendar; True when it still needs `calendars auth` (no refresh token yet)."""
    from calbridge.providers.google.auth import read_oauth_client

    if (service_account is None) == (oauth_client is None):
        raise ConfigError(
            "a Google calendar needs exactly one of --service-account FILE --subject USER_EMAIL "
            "(domain-wide delegation) or --oauth-client FILE (one person's consent)"
        )
    if subject is not None and service_account is None:
        raise ConfigError("--subject goes with --service-account (the user it acts as)")
    box = SecretBox.from_settings(load_settings())
    key = _read_json(service_account, "--service-account") if service_account else None
    client = _read_json(oauth_client, "--oauth-client") if oauth_client else None
    with session() as s:
        add_google_calendar(
            s,
            box,
            name,
            calendar_id,
            service_account_info=key,
            subject=subject,
            oauth_client=client,
            api_base=api_base,
            **options,
        )
    return client is not None and read_oauth_client(client, "--oauth-client")[1] is None


def _google_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What identifies a Google calendar (never its key, client secret or refresh token)."""
    keys = ("calendar_id", "auth", "subject", "api_base", "page_size", "watch")
    return {key: settings.get(key) for key in keys if settings.get(key) is not None}


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
    return {
        "name": c.name,
        "kind": c.kind,
        "url": settings.get("url"),
        "username": settings.get("username"),
        "mailbox": settings.get("mailbox"),
        "graph": _graph_settings(settings) if c.kind == "graph" else None,
        "google": _google_settings(settings) if c.kind == "google" else None,
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


def _graph_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What identifies a Microsoft 365 calendar (never its secret or certificate)."""
    keys = ("tenant", "client_id", "auth", "calendar_id", "api_base", "login_base", "ca_file")
    return {key: settings.get(key) for key in keys}


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
            _where(r),
            r["owner"],
            r["policy"],
            r["direction"],
            r["last_sync_at"] or "never",
            r["last_error"] or "",
        )
    table.print()


def _where(data: dict[str, Any]) -> str:
    """The calendar's address: CalDAV URL, Microsoft 365 mailbox or Google calendar id."""
    return str(data["url"] or data["mailbox"] or (data["google"] or {}).get("calendar_id") or "")


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
    for key, value in (data.get("graph") or data.get("google") or {}).items():
        if value is not None:
            rows.add(key.replace("_", " "), readable(value))
    rows.add("owner", data["owner"] or "none")
    rows.add("policy", data["policy"])
    rows.add("direction", data["direction"])
    rows.add("horizon", f"{data['horizon_days']} days")
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


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The calendar to change")],
    caldav: CalDAVUrl = None,
    username: Username = None,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    owner: Owner = None,
    no_owner: Annotated[bool, typer.Option("--no-owner", help="It has no owner")] = False,
    policy: Annotated[str | None, typer.Option("--policy", help="|".join(POLICIES))] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="both|pull|push")] = None,
    horizon_days: Annotated[int | None, typer.Option("--horizon-days", min=1, max=3650)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    graph: Mailbox = None,
    tenant: Tenant = None,
    client_id: ClientId = None,
    client_secret_env: ClientSecretEnv = None,
    certificate: Certificate = None,
    calendar_id: CalendarId = None,
    api_base: ApiBase = None,
    login_base: LoginBase = None,
    ca_file: CaFile = None,
    google: GoogleId = None,
    service_account: ServiceAccount = None,
    subject: Subject = None,
    oauth_client: OAuthClientFile = None,
) -> None:
    """Change a calendar's credentials or settings in place (checked like `add`); its links,
    sync token and snapshots are kept."""
    password = None
    if password_env is not None or password_file is not None:
        password = _read_password(password_env, password_file)
    secret = pem = None
    if client_secret_env is not None or certificate is not None:
        secret, pem = _graph_credential(client_secret_env, certificate)
    change = CalendarUpdate(
        owner=owner,
        clear_owner=no_owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        url=caldav,
        username=username,
        password=password,
        google_calendar_id=google,
        service_account_info=(
            _read_json(service_account, "--service-account") if service_account else None
        ),
        subject=subject,
        oauth_client=_read_json(oauth_client, "--oauth-client") if oauth_client else None,
        mailbox=graph,
        tenant=tenant,
        client_id=client_id,
        client_secret=secret,
        certificate_pem=pem,
        calendar_id=calendar_id,
        login_base=login_base,
        ca_file=str(ca_file) if ca_file is not None else None,
        api_base=api_base,
    )
    if caldav is not None or username is not None or password is not None:
        with session() as s:
            current = find_calendar(s, name)
            if current.kind == "caldav":
                _warn_cleartext(
                    caldav or str(current.settings.get("url", "")),
                    username or str(current.settings.get("username", "")),
                )
    box = SecretBox.from_settings(load_settings())
    with session() as s:
        data = calendar_json(s, update_calendar(s, box, name, change))
    print_json(data) if as_json else say(f"Updated calendar '{name}'.")


@app.command("remove")
def remove(name: str) -> None:
    """Unlink a calendar. Its bookings stay in the booking system; its links are kept aside,
    so that linking the same calendar again adopts its events instead of duplicating them."""
    with session() as s:
        remove_calendar(s, name)
    say(f"Removed calendar '{name}'; its bookings stay.")
