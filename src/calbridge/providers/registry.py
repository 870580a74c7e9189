"""The calendar APIs calbridge can link, by kind: the one place that lists them.

``Calendar.kind`` names an entry of :data:`KINDS`; everything that depends on the API — its
connection settings, opening its provider, the CLI options of ``calendars add`` /
``calendars update``, which remote calendar it points at — is looked up here, so ``sync/`` and
``cli/`` never test a kind by name.

Adding a provider is one folder plus one line:

1. ``providers/NAME/`` with the connector, and a ``kind.py`` that defines ``KIND``, a
   :class:`ProviderKind` (below);
2. ``"NAME": "calbridge.providers.NAME.kind"`` in :data:`KINDS`.

A :class:`ProviderKind` is a frozen dataclass of plain values and functions:

- ``name`` (the stored ``Calendar.kind``), ``label`` (how messages call it: "CalDAV");
- ``settings``: a pydantic model, subclass of :class:`ProviderSettings`, of what
  ``Calendar.settings`` holds for this kind (never a secret; the stored JSON is its
  ``model_dump``, unknown keys are kept);
- ``selector``: the :class:`CliOption` that names the remote calendar and picks the kind in
  ``calendars add`` (``--caldav URL``); ``options``: its other connection options. An option
  several kinds share (``--username``, ``--ca-file``) is declared identically by each;
- ``connect(request) -> Connection``: turns the given option values (:class:`ConnectRequest`:
  read already — an ``--…-env`` option's value is the variable's content) into settings and
  the secret to seal, for an add (``request.settings is None``) or an update (the current
  settings and opened secret, to change in place). Raises :class:`ConfigError` naming the
  option at fault;
- ``open(name, settings, secret, adding) -> CalendarProvider``: the provider, making no request;
- ``identity(settings) -> str``: one string per remote calendar (a calendar may be linked
  once, see :mod:`calbridge.sync.relink`); ``describe(settings) -> str``: that calendar as a
  person knows it; ``where(settings) -> str``: its address in one short column;
- ``credentials``: the options that give a stored calendar its credentials again (messages);
- optional: ``public(settings) -> dict`` (the settings ``calendars show --json`` prints under
  the kind's name), ``checked(settings, provider) -> settings`` (what the connection check
  learned, e.g. the id of a mailbox's default calendar), ``warnings(settings) -> list[str]``
  (printed by the CLI, e.g. a password sent in clear), ``unchecked(name) -> str`` (what to run
  when the connection cannot be checked yet), ``notify`` (the module handling the API's push
  notifications, for :mod:`calbridge.service`: see *Push modules* below),
  ``open_keeping(name, settings, secret, adding, keep)`` (like ``open``, given ``keep(key,
  value)`` that stores state for the next process in the calendar's sealed secret — Microsoft
  365 keeps MSAL's caches there; used when the caller has a store).

Kind modules are imported on first use, so listing the kinds never imports an API's client
library.

Push modules (``notify``, :func:`push_module`): what the service's channel keeper
(:mod:`calbridge.service.channels`) calls, knowing no API itself —

- ``SETTINGS_KEY``: the key of ``Calendar.settings`` holding the calendar's channel;
- ``keep_channel(keeper, calendar_id, name, settings, of, now) -> "opened" | "renewed" |
  None``: under the calendar's lock, open the channel the calendar lacks (or one watching
  another remote calendar than ``of``) and renew one near expiry; the ``keeper`` offers
  ``store``, ``box``, ``address(path)``, ``lifetime(kind, default)``, ``renew_margin``,
  ``provider_factory``/``open_provider(calendar)``, ``on_change(calendar_id)`` (enqueue a
  sync), ``stream_minutes`` and ``state`` (a dict a kind may keep in-process state in);
- ``remove_channel(store, box, name)``: before the calendar is removed;
- optional ``retain(keeper, calendar_ids) -> list[str]``: stop in-process state of calendars
  no longer watched.

The entry's ``calls_back`` says whether the API calls our ``/hooks/*`` (its channels are kept
only with ``CALBRIDGE_PUBLIC_URL``; without one its calendars are polled more often) or we
call it (EWS streams); ``mailbox_key`` names the setting whose mailbox the API throttles
(the service's per-mailbox politeness); ``channel`` (:class:`PushChannel`) says how its channel
is shown and when it expires; ``shown`` lists the settings the admin pages show;
``api_connection`` (an :class:`ApiConnection` model) is its connection in the REST API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from calbridge.errors import ConfigError

if TYPE_CHECKING:
    from calbridge.domain.remote import CalendarProvider

# kind → the module defining its ``KIND``; one line per calendar API
KINDS: dict[str, str] = {
    "caldav": "calbridge.providers.caldav.kind",
    "google": "calbridge.providers.google.kind",
    "graph": "calbridge.providers.graph.kind",
    "ews": "calbridge.providers.ews.kind",
}


# keep(key, value): store ``value`` under ``key`` in the calendar's sealed secret
Keep = Callable[[str, Any], None]


class ProviderSettings(BaseModel):
    """What a kind keeps in ``Calendar.settings``. Keys this version does not model are kept
    (``extra="allow"``), so the stored JSON round-trips whatever wrote it."""

    model_config = ConfigDict(extra="allow")

    def stored(self) -> dict[str, Any]:
        """The JSON ``Calendar.settings`` holds (unset optional values left out)."""
        return self.model_dump(mode="json", exclude_none=True)


S = TypeVar("S", bound=ProviderSettings)


def as_text(value: str, flag: str) -> str:
    """The option's value as given."""
    return value


def as_url(value: str, flag: str) -> str:
    """An http(s) URL (checked now: a clear error instead of a failed connection later)."""
    from calbridge.providers.http_client import check_http_url

    check_http_url(value, flag)
    return value


def from_env(value: str, flag: str) -> str:
    """The content of the environment variable the option names (secrets never go on the
    command line)."""
    content = os.environ.get(value)
    if content is None:
        raise ConfigError(f"{flag}: the environment variable {value} is not set")
    if not content:
        raise ConfigError(f"{flag}: the environment variable {value} is empty")
    return content


def from_secret_file(value: str, flag: str) -> str:
    """A secret kept in a file (surrounding whitespace and the final newline dropped)."""
    try:
        return Path(value).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{flag}: cannot read {value}: {_reason(exc)}") from exc


def from_text_file(value: str, flag: str) -> str:
    """A text file's content as it is (a PEM bundle)."""
    try:
        return Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{flag}: cannot read {value}: {_reason(exc)}") from exc


def from_json_file(value: str, flag: str) -> dict[str, Any]:
    """A JSON object read from a file (a key or client file)."""
    try:
        data = json.loads(Path(value).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{flag}: cannot read {value} as JSON: {_reason(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{flag}: {value} does not hold a JSON object")
    return data


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


@dataclass(frozen=True)
class CliOption:
    """One connection option of ``calendars add`` / ``calendars update``.

    ``flag`` is what a person types (``--password-env``); ``key`` names the value handed to
    ``connect`` (two flags may fill one key: ``--password-env`` and ``--password-file`` both
    give ``password``); ``read`` turns the typed text into that value (``from_env``,
    ``from_json_file``…, raising :class:`ConfigError`); ``switch`` makes it an on/off flag
    (``--impersonate/--no-impersonate``; its value is a bool and ``read`` is not used);
    ``credential`` marks a new credential (with one, an update may replace a secret the current
    key can no longer open)."""

    flag: str
    key: str
    help: str = ""
    metavar: str = "TEXT"
    read: Callable[[str, str], Any] = as_text
    switch: bool = False
    credential: bool = False

    @property
    def param(self) -> str:
        """The Python parameter name the CLI gives it (``--password-env`` → ``password_env``)."""
        return self.flag.lstrip("-").replace("-", "_")

    def value(self, given: str | bool) -> Any:
        if self.switch:
            return bool(given)
        return self.read(str(given), self.flag)


# options several kinds share (declared once, so they stay identical)
USERNAME = CliOption("--username", "username", "User name", "USER")
PASSWORD_ENV = CliOption(
    "--password-env", "password", "Env var holding the password", "VAR", from_env, credential=True
)
PASSWORD_FILE = CliOption(
    "--password-file",
    "password",
    "File holding the password",
    "FILE",
    from_secret_file,
    credential=True,
)
API_BASE = CliOption("--api-base", "api_base", "API root URL", "URL", as_url)
CA_FILE = CliOption("--ca-file", "ca_file", "Extra trusted CA (PEM)", "FILE")


@dataclass(frozen=True)
class ConnectRequest:
    """What ``connect`` works from: option ``values`` by key (only those given, read already);
    for an update the calendar's current ``settings`` and opened ``secret`` (``settings`` is
    None for an add, ``secret`` empty)."""

    name: str
    values: Mapping[str, Any]
    settings: Mapping[str, Any] | None = None
    secret: Mapping[str, Any] = field(default_factory=dict)

    @property
    def adding(self) -> bool:
        return self.settings is None

    def text(self, key: str) -> str | None:
        """A given text value, surrounding whitespace dropped."""
        value = self.values.get(key)
        return None if value is None else str(value).strip()


@dataclass(frozen=True)
class Connection:
    """What ``connect`` decided: the settings to store, the secret to seal, and whether the
    connection can be checked now (False: a Google OAuth client still waiting for consent)."""

    settings: ProviderSettings
    secret: dict[str, Any]
    checkable: bool = True


class ApiConnection(BaseModel):
    """A kind's connection as the REST API takes it (``POST /api/calendars``): a ``kind``
    literal plus that kind's fields (a pydantic model in the kind's module); the API builds
    its request schema from every entry's ``api_connection``."""

    model_config = ConfigDict(extra="forbid")

    def values(self) -> dict[str, Any]:
        """The connection as option values by key (what ``add_calendar`` takes)."""
        raise NotImplementedError

    def needs_consent(self, secret: Mapping[str, Any]) -> bool:
        """True when the calendar was stored unchecked and a person must consent next."""
        return False


def plain_secret(value: Any) -> Any:
    """A pydantic ``SecretStr`` as its text (None stays None)."""
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else value


@dataclass(frozen=True)
class PushChannel:
    """How a kind's push channel shows in the API, the admin UI and ``/metrics``: its name
    (``google-channel``), the ``Calendar.settings`` key holding it, and the field of that
    value giving its expiry (None: it does not expire, e.g. an EWS stream)."""

    name: str
    settings_key: str
    expires: str | None = None

    def expiry(self, settings: Mapping[str, Any] | None) -> str | None:
        held = (settings or {}).get(self.settings_key)
        if not isinstance(held, Mapping) or not self.expires:
            return None
        value = held.get(self.expires)
        return str(value) if value else None


@dataclass(frozen=True)
class ProviderKind(Generic[S]):
    """One calendar API, as the registry knows it (see the module docstring)."""

    name: str
    label: str
    settings: type[S]
    selector: CliOption
    connect: Callable[[ConnectRequest], Connection]
    open: Callable[[str, S, Mapping[str, Any], bool], CalendarProvider]
    identity: Callable[[S], str]
    describe: Callable[[S], str]
    where: Callable[[S], str]
    credentials: str
    options: tuple[CliOption, ...] = ()
    public: Callable[[S], dict[str, Any]] | None = None
    checked: Callable[[S, CalendarProvider], S] | None = None
    warnings: Callable[[S], list[str]] | None = None
    unchecked: Callable[[str], str] | None = None
    notify: str | None = None
    calls_back: bool = True  # its push calls our /hooks/* (needs a public URL); False: we call it
    mailbox_key: str | None = None  # settings key of the mailbox its throttling budget is per
    channel: PushChannel | None = None  # how its push channel shows (API, UI, metrics)
    shown: tuple[tuple[str, str], ...] = ()  # (settings key, label) on the admin pages
    api_connection: type[ApiConnection] | None = None  # its POST /api/calendars body part
    open_keeping: Callable[[str, S, Mapping[str, Any], bool, Keep], CalendarProvider] | None = None
    # Who its push channel belongs to, when not every credential can act on it (EWS: a
    # subscription is the signed-in account's): part of what a channel watches, so a changed
    # account makes a new channel instead of reusing one the new account may not touch.
    channel_account: Callable[[S], str] | None = None

    @property
    def all_options(self) -> tuple[CliOption, ...]:
        return (self.selector, *self.options)

    def flag_of(self, key: str) -> str:
        """The (first) option giving ``key``, for messages."""
        for option in self.all_options:
            if option.key == key:
                return option.flag
        return key

    def make(self, request: ConnectRequest) -> Connection:
        """``connect``, with settings the kind's model refuses turned into a clear error."""
        try:
            return self.connect(request)
        except ValidationError as exc:
            raise ConfigError(
                f"calendar '{request.name}': these {self.label} settings are not valid "
                f"({_problems(exc)})"
            ) from None

    def public_settings(
        self, name: str, settings: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The settings a person may see (``public``; never a secret); None when the kind
        shows none or the stored settings cannot be read (the rest of the calendar still shows)."""
        if self.public is None:
            return None
        try:
            return self.public(self.parse(name, settings))
        except ConfigError:
            return None

    def parse(self, name: str, settings: Mapping[str, Any] | None) -> S:
        """Stored settings as the kind's model; a clear error when they cannot be read."""
        try:
            return self.settings.model_validate(dict(settings or {}))
        except ValidationError as exc:
            raise ConfigError(
                f"calendar '{name}': its stored {self.label} settings are not valid "
                f"({_problems(exc)}); "
                f"link it again with `calbridge calendars update {name} "
                f"{self.selector.flag} {self.selector.metavar}` and its other options"
            ) from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )


@cache
def kind_of(kind: str) -> ProviderKind[Any]:
    """The registry entry of ``kind``; a clear error for a kind this version does not have."""
    module = KINDS.get(kind)
    if module is None:
        raise ConfigError(
            f"provider '{kind}' is not available in this version "
            f"(known: {', '.join(sorted(KINDS))})"
        )
    entry = import_module(module).KIND
    if not isinstance(entry, ProviderKind) or entry.name != kind:
        raise RuntimeError(f"{module}.KIND is not the ProviderKind for '{kind}'")
    return entry


def all_kinds() -> list[ProviderKind[Any]]:
    """Every registered kind, in :data:`KINDS` order."""
    return [kind_of(kind) for kind in KINDS]


def push_kinds() -> list[str]:
    """The kinds whose calendars can notify us of changes (``notify`` set)."""
    return [kind.name for kind in all_kinds() if kind.notify is not None]


def calls_back(kind: str) -> bool:
    """Whether ``kind``'s push needs a public URL (False for unknown kinds and pull-only)."""
    return kind in KINDS and kind_of(kind).notify is not None and kind_of(kind).calls_back


def known_kind(kind: str) -> ProviderKind[Any] | None:
    """The entry of ``kind``, None when no such kind is registered (a removed kind's rows)."""
    return kind_of(kind) if kind in KINDS else None


def push_module(kind: str) -> Any:
    """The push module of ``kind`` (see the module docstring), None when it has none or the
    kind is unknown."""
    if kind not in KINDS:
        return None
    module = kind_of(kind).notify
    return import_module(module) if module else None


def cli_options() -> list[CliOption]:
    """Every connection option of every kind, once each (by flag), selectors first. A flag two
    kinds share must mean the same (same key, reader and switch-ness)."""
    seen: dict[str, CliOption] = {}
    kinds = all_kinds()
    ordered: Sequence[CliOption] = [k.selector for k in kinds] + [
        option for k in kinds for option in k.options
    ]
    for option in ordered:
        known = seen.get(option.flag)
        if known is None:
            seen[option.flag] = option
        elif (known.key, known.read, known.switch) != (option.key, option.read, option.switch):
            raise RuntimeError(f"option {option.flag} is declared differently by two kinds")
    return list(seen.values())


def kind_for_selector(given: Mapping[str, Any]) -> ProviderKind[Any]:
    """The kind whose selector option was given (by flag); exactly one must be."""
    kinds = all_kinds()
    chosen = [k for k in kinds if given.get(k.selector.flag) is not None]
    if len(chosen) != 1:
        choices = [f"{k.selector.flag} {k.selector.metavar}" for k in kinds]
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
        raise ConfigError(f"give exactly one of {listed}")
    return chosen[0]


def read_values(
    kind: ProviderKind[Any], given: Mapping[str, Any], *, calendar: str | None = None
) -> dict[str, Any]:
    """Option values by key from the options given (by flag): each read by its option's reader.
    An option of another kind (``calendar``: the stored calendar being updated), or two flags
    filling one key, is a clear error."""
    mine = {option.flag: option for option in kind.all_options}
    foreign = sorted(flag for flag, raw in given.items() if raw is not None and flag not in mine)
    if foreign:
        raise ConfigError(foreign_options(kind, foreign, calendar))
    values: dict[str, Any] = {}
    by: dict[str, str] = {}
    for flag, raw in given.items():
        if raw is None:
            continue
        option = mine[flag]
        if option.key in values:
            raise ConfigError(f"give one of {by[option.key]} or {flag}, not both")
        values[option.key], by[option.key] = option.value(raw), flag
    return values


def foreign_options(kind: ProviderKind[Any], flags: Sequence[str], calendar: str | None) -> str:
    """The message for options that belong to other kinds of calendar."""
    verb = "does" if len(flags) == 1 else "do"
    if calendar is None:
        return f"{', '.join(flags)} {verb} not apply to a {kind.label} calendar"
    listed = ", ".join(flags)
    return f"calendar '{calendar}' is a {kind.label} calendar; {listed} {verb} not apply to it"


def flag_for_key(key: str) -> str:
    """The option (of any kind) that gives the value ``key``, for messages."""
    for option in cli_options():
        if option.key == key:
            return option.flag
    return key
