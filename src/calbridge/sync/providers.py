"""Turning a stored calendar into a provider: the one place that knows every provider kind."""

from __future__ import annotations

from shlex import quote

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox


def open_provider(calendar: Calendar, box: SecretBox, *, adding: bool = False) -> CalendarProvider:
    """The provider for ``calendar``. ``adding``: the calendar is being linked, so a refused
    credential is fixed by running ``calendars add`` again (otherwise ``calendars update``)."""
    secret = (
        box.open(calendar.secret, f"calendar '{calendar.name}'", credentials_fix(calendar))
        if calendar.secret
        else {}
    )
    settings = calendar.settings or {}
    if calendar.kind == "caldav":
        from calbridge.providers.caldav.provider import CalDAVProvider

        return CalDAVProvider(
            str(settings["url"]),
            str(settings.get("username", "")),
            str(secret.get("password", "")),
            name=calendar.name,
            timeout=float(settings.get("timeout", 30)),
            fix=caldav_fix(calendar.name, str(settings["url"]), adding),
            url_fix=caldav_url_fix(calendar.name, adding),
        )
    if calendar.kind == "graph":
        from calbridge.providers.graph.provider import open_graph

        return open_graph(calendar.name, dict(settings), secret, adding=adding)
    if calendar.kind == "google":
        from calbridge.providers.google.provider import open_google

        return open_google(calendar.name, dict(settings), secret, adding=adding)
    raise ConfigError(
        f"calendar '{calendar.name}': provider '{calendar.kind}' is not available in this version"
    )


def caldav_fix(name: str, url: str, adding: bool) -> str:
    """What to run when a CalDAV server refuses the stored username or password."""
    if adding:
        return (
            f"check them and run `calbridge calendars add {quote(name)} --caldav {quote(url)} "
            "--username USER --password-env VAR` again"
        )
    return (
        f"check them and run `calbridge calendars update {quote(name)} --password-env VAR` "
        "(with --username USER if the user changed)"
    )


def caldav_url_fix(name: str, adding: bool) -> str:
    """What to run when the stored URL is not a calendar collection the user may use."""
    example = "the calendar's own address, e.g. https://host/dav/user/calendar/"
    if adding:
        return (
            f"run `calbridge calendars add {quote(name)} --caldav URL --username USER "
            f"--password-env VAR` again with {example}"
        )
    return f"run `calbridge calendars update {quote(name)} --caldav URL` with {example}"


CREDENTIAL_OPTIONS = {
    "caldav": "--password-env VAR",
    "graph": "--client-secret-env VAR (or --certificate FILE)",
    "google": "--service-account KEY.json (or --oauth-client FILE)",
}


def credentials_fix(calendar: Calendar) -> str:
    """The command that gives a stored calendar its credentials again."""
    options = CREDENTIAL_OPTIONS.get(calendar.kind, "with its credential options")
    name = quote(calendar.name)
    return f"give it its credentials again: `calbridge calendars update {name} {options}`"
