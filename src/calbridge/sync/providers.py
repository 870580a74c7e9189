"""Turning a stored calendar into a provider: the one place that knows every provider kind."""

from __future__ import annotations

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox


def open_provider(calendar: Calendar, box: SecretBox) -> CalendarProvider:
    secret = box.open(calendar.secret, f"calendar '{calendar.name}'") if calendar.secret else {}
    settings = calendar.settings or {}
    if calendar.kind == "caldav":
        from calbridge.providers.caldav import CalDAVProvider

        return CalDAVProvider(
            str(settings["url"]),
            str(settings.get("username", "")),
            str(secret.get("password", "")),
            name=calendar.name,
            timeout=float(settings.get("timeout", 30)),
        )
    if calendar.kind == "graph":
        from calbridge.providers.graph import open_graph

        return open_graph(calendar.name, dict(settings), secret)
    if calendar.kind == "google":
        from calbridge.providers.google import open_google

        return open_google(calendar.name, dict(settings), secret)
    raise ConfigError(
        f"calendar '{calendar.name}': provider '{calendar.kind}' is not available in this version"
    )
