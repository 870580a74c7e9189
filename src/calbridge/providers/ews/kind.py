"""Exchange Server (EWS) in the provider registry (:mod:`calbridge.providers.registry`): its
stored settings, its ``calendars add`` / ``update`` options (``--ews MAILBOX --server URL
--username USER --password-env VAR`` or ``--password-file FILE``, ``--auth ntlm|basic``,
``--impersonate``, ``--ca-file FILE``) and how a stored calendar becomes an
:class:`~calbridge.providers.ews.provider.EwsProvider`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.registry import (
    CA_FILE,
    PASSWORD_ENV,
    PASSWORD_FILE,
    USERNAME,
    ApiConnection,
    CliOption,
    Connection,
    ConnectRequest,
    ProviderKind,
    ProviderSettings,
    PushChannel,
    as_url,
    plain_secret,
)

AUTHS = ("ntlm", "basic")


class EwsKindSettings(ProviderSettings):
    """``Calendar.settings`` of an Exchange calendar (the password is sealed in the secret);
    ``build`` is the server build learnt when it was linked (no version probe later)."""

    mailbox: str
    username: str
    server: str | None = None
    auth: str = "ntlm"
    impersonate: bool = False
    ca_file: str | None = None
    build: str | None = None
    cancellations: bool = False
    stream: dict[str, Any] | None = None  # the streaming subscription :mod:`.notify` keeps


def connect(request: ConnectRequest) -> Connection:
    settings = dict(request.settings or {})
    secret = dict(request.secret)
    mailbox = request.text("ews")
    if mailbox is not None:
        if "@" not in mailbox:
            raise ConfigError(f"--ews: '{mailbox}' is not a mailbox address (name@example.org)")
        if mailbox.lower() != settings.get("mailbox"):
            settings.pop("build", None)
        settings["mailbox"] = mailbox.lower()
    server = request.text("server")
    if server is not None:
        if server != settings.get("server"):
            settings.pop("build", None)
        settings["server"] = server
    username = request.text("username")
    if username is not None:
        settings["username"] = username
    auth = request.text("auth")
    if auth is not None:
        if auth not in AUTHS:
            raise ConfigError(f"--auth: '{auth}' is not one of {', '.join(AUTHS)}")
        settings["auth"] = auth
    if request.values.get("impersonate") is not None:
        settings["impersonate"] = bool(request.values["impersonate"])
    ca_file = request.text("ca_file")
    if ca_file is not None:
        if not Path(ca_file).is_file():
            raise ConfigError(f"--ca-file: there is no file {ca_file}")
        settings["ca_file"] = str(Path(ca_file).resolve())
    if request.values.get("cancellations") is not None:  # not a CLI option: set by code
        settings["cancellations"] = bool(request.values["cancellations"])
    if request.values.get("password") is not None:
        secret["password"] = str(request.values["password"])
    elif request.adding:
        raise ConfigError("give exactly one of --password-env VAR or --password-file FILE")
    if not settings.get("username"):
        raise ConfigError("an Exchange calendar needs --username (the account that signs in)")
    if not settings.get("mailbox"):
        raise ConfigError("an Exchange calendar needs --ews MAILBOX")
    return Connection(EwsKindSettings.model_validate(settings), secret)


def open_ews_kind(
    name: str, settings: EwsKindSettings, secret: Mapping[str, Any], adding: bool
) -> CalendarProvider:
    from calbridge.providers.ews import open_ews

    provider: CalendarProvider = open_ews(name, settings.stored(), dict(secret), adding=adding)
    return provider


def checked(settings: EwsKindSettings, provider: CalendarProvider) -> EwsKindSettings:
    learned = getattr(provider, "learned_settings", {}) or {}
    return settings.model_copy(
        update={
            "build": learned.get("build") or settings.build,
            "server": settings.server or learned.get("server"),
        }
    )


def warnings(settings: EwsKindSettings) -> list[str]:
    server = settings.server or ""
    if server.lower().startswith("http://") and settings.auth == "basic":
        return [f"the password of {settings.username} would cross the network in clear to {server}"]
    return []


class EwsConnection(ApiConnection):
    """An Exchange Server calendar (EWS) in the REST API; no ``server``: autodiscover."""

    kind: Literal["ews"]
    mailbox: str = Field(
        min_length=3, title="Mailbox (SMTP address)", description="The mailbox's SMTP address"
    )
    username: str = Field(
        min_length=1,
        title="User name (DOMAIN\\user or user@domain)",
        description="DOMAIN\\user or user@domain",
    )
    password: SecretStr = Field(title="Password")
    server: str | None = Field(
        None,
        title="EWS URL (…/EWS/Exchange.asmx; empty: autodiscover)",
        description="The EWS URL (…/EWS/Exchange.asmx)",
    )
    auth: Literal["ntlm", "basic"] = Field("ntlm", title="Sign-in method")
    impersonate: bool = Field(
        False,
        title="A service account acting as the mailbox (ExchangeImpersonation)",
        description="A service account acting as the mailbox",
    )
    ca_file: str | None = Field(
        None,
        title="CA file on the server (empty: the system's)",
        description="CA bundle (a path on the server)",
    )

    def values(self) -> dict[str, Any]:
        given = {
            "ews": self.mailbox,
            "username": self.username,
            "password": plain_secret(self.password),
            "server": self.server,
            "auth": self.auth,
            "impersonate": self.impersonate,
            "ca_file": self.ca_file,
        }
        return {key: value for key, value in given.items() if value is not None}


KIND = ProviderKind(
    name="ews",
    label="Exchange",
    settings=EwsKindSettings,
    selector=CliOption("--ews", "ews", "Exchange Server mailbox (EWS)", "MAILBOX"),
    options=(
        CliOption("--server", "server", "EWS URL (…/EWS/Exchange.asmx)", "URL", as_url),
        USERNAME,
        PASSWORD_ENV,
        PASSWORD_FILE,
        CliOption("--auth", "auth", "ntlm|basic", "AUTH"),
        CliOption(
            "--impersonate", "impersonate", "Act as the mailbox (impersonation)", switch=True
        ),
        CA_FILE,
    ),
    connect=connect,
    open=open_ews_kind,
    identity=lambda s: f"ews {(s.server or 'autodiscover').rstrip('/').lower()} {s.mailbox}",
    describe=lambda s: f"the calendar of the Exchange mailbox '{s.mailbox}'",
    channel_account=lambda s: s.username.lower(),
    where=lambda s: s.mailbox,
    credentials="--password-env VAR (or --password-file FILE)",
    public=lambda s: {
        "server": s.server,
        "auth": s.auth,
        "impersonate": s.impersonate,
        "ca_file": s.ca_file,
        "build": s.build,
        "cancellations": s.cancellations,
    },
    checked=checked,
    warnings=warnings,
    notify="calbridge.providers.ews.notify",
    channel=PushChannel("ews-stream", "stream"),
    api_connection=EwsConnection,
    shown=(("mailbox", "Mailbox"), ("server", "EWS URL"), ("username", "Signs in as")),
    calls_back=False,  # streaming subscriptions: we keep a connection to Exchange open
    mailbox_key="mailbox",
)
