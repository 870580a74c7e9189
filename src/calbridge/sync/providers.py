"""Turning a stored calendar into a provider, through the registry
(:mod:`calbridge.providers.registry`): this module knows no provider kind by name."""

from __future__ import annotations

from shlex import quote
from typing import Any

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.registry import kind_of
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox


def open_provider(calendar: Calendar, box: SecretBox, *, adding: bool = False) -> CalendarProvider:
    """The provider for ``calendar``. ``adding``: the calendar is being linked, so a refused
    credential is fixed by running ``calendars add`` again (otherwise ``calendars update``)."""
    try:
        kind = kind_of(calendar.kind)
    except ConfigError as exc:
        raise ConfigError(f"calendar '{calendar.name}': {exc}") from None
    settings = kind.parse(calendar.name, calendar.settings)
    secret: dict[str, Any] = (
        box.open(calendar.secret, f"calendar '{calendar.name}'", credentials_fix(calendar))
        if calendar.secret
        else {}
    )
    return kind.open(calendar.name, settings, secret, adding)


def credentials_fix(calendar: Calendar) -> str:
    """The command that gives a stored calendar its credentials again."""
    try:
        options = kind_of(calendar.kind).credentials
    except ConfigError:
        options = "with its credential options"
    name = quote(calendar.name)
    return f"give it its credentials again: `calbridge calendars update {name} {options}`"
