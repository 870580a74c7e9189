"""A provider kind that exists only in the tests: CalDAV under another name and other options,
to show that a kind is one module plus one registry line (test_provider_registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.caldav.provider import CalDAVProvider
from calbridge.providers.registry import (
    PASSWORD_ENV,
    USERNAME,
    CliOption,
    Connection,
    ConnectRequest,
    ProviderKind,
    ProviderSettings,
    as_url,
)


class DavLiteSettings(ProviderSettings):
    address: str
    user: str


def connect(request: ConnectRequest) -> Connection:
    settings = dict(request.settings or {})
    secret = dict(request.secret)
    if request.text("davlite") is not None:
        settings["address"] = request.text("davlite")
    if request.values.get("username") is not None:
        settings["user"] = request.values["username"]
    if request.values.get("password") is not None:
        secret["password"] = request.values["password"]
    elif request.adding:
        raise ConfigError("a DAV-lite calendar needs --password-env VAR")
    return Connection(DavLiteSettings.model_validate(settings), secret)


def open_davlite(
    name: str, settings: DavLiteSettings, secret: Mapping[str, Any], adding: bool
) -> CalendarProvider:
    return CalDAVProvider(settings.address, settings.user, str(secret["password"]), name=name)


KIND = ProviderKind(
    name="davlite",
    label="DAV-lite",
    settings=DavLiteSettings,
    selector=CliOption("--davlite", "davlite", "DAV-lite collection URL", "URL", as_url),
    options=(USERNAME, PASSWORD_ENV),
    connect=connect,
    open=open_davlite,
    identity=lambda s: f"davlite {s.address}",
    describe=lambda s: f"the DAV-lite collection {s.address}",
    where=lambda s: s.address,
    credentials="--password-env VAR",
)
