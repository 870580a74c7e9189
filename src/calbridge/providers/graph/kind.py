"""Microsoft 365 (Graph) in the provider registry (:mod:`calbridge.providers.registry`): its
stored settings, its ``calendars add`` / ``update`` options (``--graph MAILBOX --tenant T
--client-id ID`` with ``--client-secret-env VAR`` or ``--certificate FILE``), and how a stored
calendar becomes a :class:`GraphProvider`. Change notifications: :mod:`.notify`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.registry import (
    API_BASE,
    CA_FILE,
    ApiConnection,
    CliOption,
    Connection,
    ConnectRequest,
    Keep,
    ProviderKind,
    ProviderSettings,
    PushChannel,
    as_url,
    from_env,
    from_text_file,
    plain_secret,
)

GRAPH_API = "https://graph.microsoft.com/v1.0"


class GraphSettings(ProviderSettings):
    """``Calendar.settings`` of a Microsoft 365 calendar (the client secret or certificate is
    sealed in the secret). ``default_calendar_id`` is the id the mailbox's default calendar had
    when it was linked; ``subscription`` is the change subscription :mod:`.notify` keeps."""

    mailbox: str
    tenant: str
    client_id: str
    auth: str = "client secret"
    calendar_id: str | None = None
    default_calendar_id: str | None = None
    api_base: str | None = None
    login_base: str | None = None
    ca_file: str | None = None
    retry: dict[str, Any] | None = None
    subscription: dict[str, Any] | None = None


def connect(request: ConnectRequest) -> Connection:
    values = request.values
    secret_value, pem = values.get("client_secret"), values.get("certificate")
    if (secret_value is not None and pem is not None) or (
        request.adding and secret_value is None and pem is None
    ):
        raise ConfigError("give exactly one of --client-secret-env VAR or --certificate FILE")
    settings = dict(request.settings or {})
    secret = dict(request.secret)
    if pem is not None:
        from calbridge.providers.graph.auth import certificate_credential

        certificate_credential(str(pem))  # a clear error now, not at the first sync
        secret = {"certificate_pem": str(pem)}
        settings["auth"] = "certificate"
    if secret_value is not None:
        secret = {"client_secret": str(secret_value)}
        settings["auth"] = "client secret"
    ca_file = values.get("ca_file")
    if ca_file is not None:
        if not Path(str(ca_file)).is_file():
            raise ConfigError(f"--ca-file: there is no file {ca_file}")
        settings["ca_file"] = str(Path(str(ca_file)).resolve())
    plain = {
        "mailbox": request.text("graph"),
        "tenant": request.text("tenant"),
        "client_id": request.text("client_id"),
        "calendar_id": request.text("calendar_id"),
        "api_base": request.text("api_base"),
        "login_base": request.text("login_base"),
    }
    for key, value in plain.items():
        if value is not None:
            settings[key] = value
    if any(plain[key] is not None for key in ("tenant", "client_id", "login_base")):
        secret.pop("msal", None)  # MSAL's cached tokens belong to the app they were issued to
    if not request.adding and (plain["mailbox"] is not None or plain["api_base"] is not None):
        settings.pop("default_calendar_id", None)  # another mailbox: read again at the check
    for key in ("calendar_id", "api_base", "login_base"):
        if key in settings and not settings[key]:
            del settings[key]  # "" goes back to the default (calendar, API, identity URL)
    for key, option in (("tenant", "--tenant"), ("client_id", "--client-id")):
        if not settings.get(key):
            raise ConfigError(f"a Microsoft 365 calendar needs {option}")
    return Connection(GraphSettings.model_validate(settings), secret)


def open_graph_kind(
    name: str, settings: GraphSettings, secret: Mapping[str, Any], adding: bool
) -> CalendarProvider:
    from calbridge.providers.graph.provider import open_graph

    return open_graph(name, settings.stored(), dict(secret), adding=adding)


def open_graph_keeping(
    name: str, settings: GraphSettings, secret: Mapping[str, Any], adding: bool, keep: Keep
) -> CalendarProvider:
    """As :func:`open_graph_kind`, keeping MSAL's token and discovery caches (``msal``) for
    the next process: a no-change CLI sync then makes its delta request only."""
    from calbridge.providers.graph.provider import open_graph

    def on_msal_state(state: dict[str, Any]) -> None:
        keep("msal", state)

    return open_graph(
        name, settings.stored(), dict(secret), adding=adding, on_msal_state=on_msal_state
    )


def checked(settings: GraphSettings, provider: CalendarProvider) -> GraphSettings:
    """The mailbox's default calendar, by its id: linking it by id too is a duplicate."""
    resolved = getattr(provider, "resolved_calendar_id", None)
    if resolved and not settings.calendar_id:
        return settings.model_copy(update={"default_calendar_id": resolved})
    return settings


def identity(settings: GraphSettings) -> str:
    base = (settings.api_base or GRAPH_API).rstrip("/").lower()
    mailbox = settings.mailbox.strip().lower()
    calendar = settings.calendar_id or settings.default_calendar_id
    return f"graph {base} {mailbox} {calendar or 'default calendar'}"


def describe(settings: GraphSettings) -> str:
    where = f"calendar '{settings.calendar_id}'" if settings.calendar_id else "the default calendar"
    return f"{where} of the Microsoft 365 mailbox '{settings.mailbox}'"


def public(settings: GraphSettings) -> dict[str, Any]:
    """What identifies a Microsoft 365 calendar (never its secret or certificate)."""
    keys = ("tenant", "client_id", "auth", "calendar_id", "api_base", "login_base", "ca_file")
    return {key: getattr(settings, key) for key in keys}


class GraphConnection(ApiConnection):
    """An app registration signing in with a client secret or a certificate (PEM with its
    private key, as Microsoft recommends for production): exactly one of the two."""

    kind: Literal["graph"]
    mailbox: str = Field(min_length=1, title="Mailbox")
    tenant: str = Field(min_length=1, title="Tenant (id or domain)")
    client_id: str = Field(min_length=1, title="App (client) id")
    client_secret: SecretStr | None = Field(None, title="Client secret (or a certificate)")
    certificate_pem: SecretStr | None = Field(
        None,
        title="Certificate with its private key (PEM; or a client secret)",
        description="PEM holding the app's certificate and its private key",
    )
    calendar_id: str | None = Field(None, title="Calendar id (empty: the mailbox's main calendar)")
    api_base: str | None = Field(None, title="API base URL (empty: the real service)")
    login_base: str | None = Field(None, title="Sign-in base URL (empty: Microsoft's)")
    ca_file: str | None = Field(
        None,
        title="CA file on the server (empty: the system's)",
        description="CA bundle (a path on the server) for a TLS-inspecting proxy",
    )

    @model_validator(mode="after")
    def _one_credential(self) -> GraphConnection:
        if (self.client_secret is None) == (self.certificate_pem is None):
            raise ValueError("give exactly one of client_secret or certificate_pem")
        return self

    def values(self) -> dict[str, Any]:
        given = {
            "graph": self.mailbox,
            "tenant": self.tenant,
            "client_id": self.client_id,
            "client_secret": plain_secret(self.client_secret),
            "certificate": plain_secret(self.certificate_pem),
            "calendar_id": self.calendar_id,
            "api_base": self.api_base,
            "login_base": self.login_base,
            "ca_file": self.ca_file,
        }
        return {key: value for key, value in given.items() if value is not None}


KIND = ProviderKind(
    name="graph",
    label="Microsoft 365",
    settings=GraphSettings,
    selector=CliOption("--graph", "graph", "Microsoft 365 mailbox", "MAILBOX"),
    options=(
        CliOption("--tenant", "tenant", "Entra tenant id/domain", "TENANT"),
        CliOption("--client-id", "client_id", "App (client) id", "ID"),
        CliOption(
            "--client-secret-env",
            "client_secret",
            "Env var with the app's secret",
            "VAR",
            from_env,
            credential=True,
        ),
        CliOption(
            "--certificate",
            "certificate",
            "PEM: the app's key + certificate",
            "FILE",
            from_text_file,
            credential=True,
        ),
        CliOption("--calendar-id", "calendar_id", "A calendar other than the default", "ID"),
        API_BASE,
        CliOption("--login-base", "login_base", "Identity URL", "URL", as_url),
        CA_FILE,
    ),
    connect=connect,
    open=open_graph_kind,
    open_keeping=open_graph_keeping,
    identity=identity,
    describe=describe,
    where=lambda s: s.mailbox,
    credentials="--client-secret-env VAR (or --certificate FILE)",
    public=public,
    checked=checked,
    notify="calbridge.providers.graph.notify",
    channel=PushChannel("graph-subscription", "subscription", "expires"),
    api_connection=GraphConnection,
    shown=(("mailbox", "Mailbox"), ("tenant", "Tenant"), ("client_id", "App id")),
    mailbox_key="mailbox",
)
