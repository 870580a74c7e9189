"""CalDAV in the provider registry (:mod:`calbridge.providers.registry`): its stored settings,
its ``calendars add`` / ``update`` options (``--caldav URL --username USER --password-env VAR``
or ``--password-file FILE``) and how a stored calendar becomes a :class:`CalDAVProvider`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.caldav.messages import caldav_fix, caldav_url_fix
from calbridge.providers.registry import (
    PASSWORD_ENV,
    PASSWORD_FILE,
    USERNAME,
    ApiConnection,
    CliOption,
    Connection,
    ConnectRequest,
    ProviderKind,
    ProviderSettings,
    as_url,
    plain_secret,
)


class CalDAVSettings(ProviderSettings):
    """``Calendar.settings`` of a CalDAV calendar (the password is sealed in the secret)."""

    url: str
    username: str = ""
    timeout: float = 30


def connect(request: ConnectRequest) -> Connection:
    old = dict(request.settings or {})
    secret = dict(request.secret)
    url = request.text("caldav")
    if url is not None:
        old["url"] = url
    if request.values.get("username") is not None:
        old["username"] = str(request.values["username"])
    if request.values.get("password") is not None:
        secret["password"] = str(request.values["password"])
    elif request.adding:
        raise ConfigError("give exactly one of --password-env VAR or --password-file FILE")
    if not old.get("url"):
        raise ConfigError("a CalDAV calendar needs --caldav URL")
    return Connection(CalDAVSettings.model_validate(old), secret)


def open_caldav(
    name: str, settings: CalDAVSettings, secret: Mapping[str, Any], adding: bool
) -> CalendarProvider:
    from calbridge.providers.caldav.provider import CalDAVProvider

    return CalDAVProvider(
        settings.url,
        settings.username,
        str(secret.get("password", "")),
        name=name,
        timeout=settings.timeout,
        fix=caldav_fix(name, settings.url, adding),
        url_fix=caldav_url_fix(name, adding),
    )


def identity(settings: CalDAVSettings) -> str:
    from calbridge.sync.relink import normalize_url

    return f"caldav {normalize_url(settings.url)}"


def warnings(settings: CalDAVSettings) -> list[str]:
    from calbridge.providers.caldav.http import cleartext_warning

    warning = cleartext_warning(settings.url, settings.username)
    return [warning] if warning else []


class CalDAVConnection(ApiConnection):
    """A CalDAV calendar in the REST API."""

    kind: Literal["caldav"]
    url: str = Field(
        min_length=1, title="CalDAV calendar URL", description="The calendar collection's URL"
    )
    username: str = Field(title="User name")
    password: SecretStr = Field(title="Password (app password)")

    def values(self) -> dict[str, Any]:
        return {
            "caldav": self.url,
            "username": self.username,
            "password": plain_secret(self.password),
        }


KIND = ProviderKind(
    name="caldav",
    label="CalDAV",
    shown=(("url", "URL"), ("username", "User name")),
    api_connection=CalDAVConnection,
    settings=CalDAVSettings,
    selector=CliOption("--caldav", "caldav", "CalDAV collection URL", "URL", as_url),
    options=(USERNAME, PASSWORD_ENV, PASSWORD_FILE),
    connect=connect,
    open=open_caldav,
    identity=identity,
    describe=lambda s: f"the CalDAV collection {s.url}",
    where=lambda s: s.url,
    credentials="--password-env VAR",
    warnings=warnings,
)
