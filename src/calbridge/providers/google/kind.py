"""Google Calendar in the provider registry (:mod:`calbridge.providers.registry`): its stored
settings, its ``calendars add`` / ``update`` options (``--google CALENDAR_ID`` with
``--service-account KEY.json [--subject USER]`` or ``--oauth-client FILE``), and how a stored
calendar becomes a :class:`GoogleProvider`. Push notifications: :mod:`.notify`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.registry import (
    API_BASE,
    ApiConnection,
    CliOption,
    Connection,
    ConnectRequest,
    ProviderKind,
    ProviderSettings,
    PushChannel,
    from_json_file,
)

GOOGLE_API = "https://www.googleapis.com"


class GoogleSettings(ProviderSettings):
    """``Calendar.settings`` of a Google calendar (keys, client secrets and refresh tokens are
    sealed in the secret). ``watch`` is the push channel :mod:`.notify` keeps."""

    calendar_id: str
    auth: Literal["service_account", "oauth"] = "oauth"
    subject: str | None = None
    account: str | None = None
    api_base: str | None = None
    page_size: int | None = None
    retry: dict[str, Any] | None = None
    watch: dict[str, Any] | None = None


def connect(request: ConnectRequest) -> Connection:
    """Settings and secret from the options: exactly one of a service account (acting as
    ``--subject``) or an OAuth client for an add; for an update, a new credential replaces the
    old one. Not checkable while an OAuth client has no refresh token (consent comes next)."""
    from calbridge.providers.google.auth import read_oauth_client, read_service_account

    values = request.values
    key, client = values.get("service_account"), values.get("oauth_client")
    if request.adding and (key is None) == (client is None):
        raise ConfigError(
            "a Google calendar needs exactly one of --service-account FILE --subject USER_EMAIL "
            "(domain-wide delegation) or --oauth-client FILE (one person's consent)"
        )
    if key is not None and client is not None:
        raise ConfigError("give exactly one of --service-account FILE or --oauth-client FILE")
    if request.adding and values.get("subject") is not None and key is None:
        raise ConfigError("--subject goes with --service-account (the user it acts as)")
    settings = dict(request.settings or {})
    secret = dict(request.secret)
    calendar_id = request.text("google")
    if calendar_id is not None:
        settings["calendar_id"] = calendar_id
    api_base = request.text("api_base")
    if api_base is not None:
        settings["api_base"] = api_base.rstrip("/")
    if key is not None:
        settings["auth"] = "service_account"
        secret = {"service_account": read_service_account(key, "--service-account")}
    if client is not None:
        found, refresh_token = read_oauth_client(client, "--oauth-client")
        settings["auth"] = "oauth"
        settings.pop("subject", None)
        secret = {"oauth_client": found.as_dict()}
        if refresh_token:
            secret["refresh_token"] = refresh_token
    subject = request.text("subject")
    if subject is not None:
        if settings.get("auth") != "service_account":
            raise ConfigError("--subject goes with a service account (the user it acts as)")
        settings["subject"] = subject
    if values.get("page_size"):
        settings["page_size"] = int(values["page_size"])
    for empty in ("api_base", "subject"):
        if settings.get(empty) == "":
            del settings[empty]
    checkable = settings.get("auth") != "oauth" or bool(secret.get("refresh_token"))
    return Connection(GoogleSettings.model_validate(settings), secret, checkable)


def open_google_kind(
    name: str, settings: GoogleSettings, secret: Mapping[str, Any], adding: bool
) -> CalendarProvider:
    from calbridge.providers.google.provider import open_google

    return open_google(name, settings.stored(), dict(secret), adding=adding)


def identity(settings: GoogleSettings) -> str:
    base = (settings.api_base or GOOGLE_API).rstrip("/").lower()
    calendar_id = settings.calendar_id.strip().lower()
    if calendar_id == "primary":  # an alias: whose primary calendar it is
        calendar_id = f"primary of {(settings.subject or '').strip().lower()}"
    return f"google {base} {calendar_id}"


def public(settings: GoogleSettings) -> dict[str, Any]:
    """What identifies a Google calendar (never its key, client secret or refresh token)."""
    data = settings.stored()
    keys = ("calendar_id", "auth", "subject", "api_base", "page_size", "watch")
    return {key: data[key] for key in keys if data.get(key) is not None}


class GoogleConnection(ApiConnection):
    """A Google calendar in the REST API: a service account (with ``subject``) or an OAuth
    client, whose consent follows (``calbridge calendars auth NAME``)."""

    kind: Literal["google"]
    calendar_id: str = Field(min_length=1, title="Google calendar id")
    service_account: dict[str, Any] | None = Field(
        None,
        title="Service-account key (JSON; Workspace, domain-wide delegation)",
        description="Service-account key (domain-wide delegation); with `subject`",
    )
    subject: str | None = Field(None, title="Acting as (user email, with a service account)")
    oauth_client: dict[str, Any] | None = Field(
        None,
        title="OAuth client file (JSON; for one user, consent follows)",
        description="OAuth client file; consent follows with `calbridge calendars auth`",
    )
    api_base: str | None = Field(None, title="API base URL (empty: the real service)")

    def values(self) -> dict[str, Any]:
        given = {
            "google": self.calendar_id,
            "service_account": self.service_account,
            "subject": self.subject,
            "oauth_client": self.oauth_client,
            "api_base": self.api_base,
        }
        return {key: value for key, value in given.items() if value is not None}

    def needs_consent(self, secret: Mapping[str, Any]) -> bool:
        return self.oauth_client is not None and "refresh_token" not in secret


KIND = ProviderKind(
    name="google",
    label="Google",
    settings=GoogleSettings,
    selector=CliOption("--google", "google", "Google calendar id", "CALENDAR_ID"),
    options=(
        CliOption(
            "--service-account",
            "service_account",
            "Google service-account key (JSON)",
            "FILE",
            from_json_file,
            credential=True,
        ),
        CliOption("--subject", "subject", "User the service account acts as", "USER_EMAIL"),
        CliOption(
            "--oauth-client",
            "oauth_client",
            "Google OAuth client file (JSON)",
            "FILE",
            from_json_file,
            credential=True,
        ),
        API_BASE,
    ),
    connect=connect,
    open=open_google_kind,
    identity=identity,
    describe=lambda s: f"the Google calendar '{s.calendar_id}'",
    where=lambda s: s.calendar_id,
    credentials="--service-account KEY.json (or --oauth-client FILE)",
    public=public,
    unchecked=lambda name: f"Next, authorize it: `calbridge calendars auth {name}`.",
    notify="calbridge.providers.google.notify",
    channel=PushChannel("google-channel", "watch", "expiration"),
    api_connection=GoogleConnection,
    shown=(("calendar_id", "Google calendar"), ("subject", "Acting as"), ("auth", "Auth")),
)
