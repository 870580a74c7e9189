"""``/api/calendars``: list with status, add, test a connection, update credentials, remove,
sync now, full resync, pause/resume, confirm held cancellations.

A calendar's JSON carries its run state as the service keeps it (``state``: ok / syncing /
error / auth_expired / paused / needs_confirmation, last success, last error with a hint, next
run) and its push channel or subscription expiry — never a password, key, client secret, token
or refresh token. Adding and testing use the same functions as ``calbridge calendars add``
(:mod:`calbridge.sync.calendars`): a test runs the whole add, the provider's connection check
included, in a transaction that is rolled back, so it fails exactly as an add would and writes
nothing. Sync now / resync / pause / resume / confirm go through
:mod:`calbridge.ops.sync_control` (the same functions as the CLI and the admin UI).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.config import load_settings
from calbridge.errors import ConfigError, NotFound
from calbridge.ops import sync_control
from calbridge.ops.calendars import unlink_calendar
from calbridge.ops.history import record
from calbridge.providers.registry import ApiConnection, all_kinds, known_kind
from calbridge.service.api.deps import Caller, Writer, store_of, transaction
from calbridge.service.api.times import instant
from calbridge.service.problems import ProblemRoute
from calbridge.store.models import Calendar, Link, Rejection
from calbridge.store.secrets import SecretBox
from calbridge.sync import calendars as linking
from calbridge.sync.assistant import AssistantChange, apply_assistant, assistant_json
from calbridge.sync.calendars import CalendarUpdate, update_calendar
from calbridge.sync.providers import open_provider

router = APIRouter(route_class=ProblemRoute, prefix="/calendars", tags=["calendars"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _connection_models() -> tuple[type[ApiConnection], ...]:
    """Every registered kind's connection model (the registry's ``api_connection``)."""
    return tuple(k.api_connection for k in all_kinds() if k.api_connection is not None)


# a connection is the registered kinds' models, told apart by "kind"
Connection = Annotated[  # type: ignore[valid-type]
    Union[_connection_models()],  # noqa: UP007
    Field(discriminator="kind"),
]


class AssistantIn(_Body):
    """The calendar as an assistant (README "Rooms, export modes and filters"): absent fields
    stay as they are; ``title_template``/``room`` ``""`` clear them; ``filters`` replaces all
    filters (``{}``: none)."""

    export: Literal["locations", "days", "event"] | None = None
    rooms_as_resources: bool | None = None
    title_template: str | None = Field(None, max_length=500)
    filters: dict[Literal["statuses", "locations", "clients", "managers"], list[str]] | None = None
    room: str | None = None

    def change(self) -> AssistantChange:
        filters: dict[str, list[str]] | None = None
        if self.filters is not None:
            filters = {str(k): list(v) for k, v in self.filters.items()}
        return AssistantChange(
            self.export, self.rooms_as_resources, self.title_template, filters, self.room
        )


class CalendarAdd(_Body):
    name: str = Field(min_length=1, max_length=200)
    connection: Connection  # type: ignore[valid-type]
    owner: str | None = Field(None, description="User id: also carries their bookings")
    policy: Literal["booking-wins", "calendar-wins", "latest-wins"] = "booking-wins"
    direction: Literal["both", "pull", "push"] = "both"
    horizon_days: int = Field(365, ge=1, le=3650)
    assistant: AssistantIn | None = None


class CalendarChange(_Body):
    """What to change on a linked calendar; absent fields stay as they are. Connection fields
    apply to the calendar's own kind: CalDAV ``url``/``username``/``password``; Google
    ``google_calendar_id``/``service_account``/``subject``/``oauth_client``; Microsoft 365
    ``mailbox``/``tenant``/``client_id``/``client_secret``/``calendar_id``/``login_base``;
    ``api_base`` for Google and Microsoft 365; Exchange Server ``mailbox``/``username``/
    ``password``/``server``/``auth``/``impersonate``; ``ca_file`` for Microsoft 365 and
    Exchange. A field of another kind is refused, naming it."""

    owner: str | None = None
    clear_owner: bool = False
    policy: Literal["booking-wins", "calendar-wins", "latest-wins"] | None = None
    direction: Literal["both", "pull", "push"] | None = None
    horizon_days: int | None = Field(None, ge=1, le=3650)
    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    google_calendar_id: str | None = None
    service_account: dict[str, Any] | None = None
    subject: str | None = None
    oauth_client: dict[str, Any] | None = None
    mailbox: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    certificate_pem: SecretStr | None = None
    calendar_id: str | None = None
    login_base: str | None = None
    api_base: str | None = None
    server: str | None = None
    auth: Literal["ntlm", "basic"] | None = None
    impersonate: bool | None = None
    ca_file: str | None = None
    assistant: AssistantIn | None = None

    def as_update(self, kind: str) -> CalendarUpdate:
        common = ("owner", "clear_owner", "policy", "direction", "horizon_days")
        hidden = {"password", "client_secret", "certificate_pem", "assistant", *common}
        values = self.model_dump(exclude=hidden)
        values["password"] = _plain(self.password)
        values["client_secret"] = _plain(self.client_secret)
        values["certificate"] = _plain(self.certificate_pem)
        # the API's field names → the registry's option keys (calbridge.providers.registry):
        # ``mailbox`` is the calendar option of the kinds that name a mailbox (Graph, EWS)
        entry = known_kind(kind)
        mailbox_kind = entry is not None and entry.mailbox_key == "mailbox"
        keys = {**_CONNECTION_KEYS, "mailbox": kind if mailbox_kind else "graph"}
        for field_name, key in keys.items():
            values[key] = values.pop(field_name)
        return CalendarUpdate(
            **self.model_dump(include=set(common)),
            connection={key: value for key, value in values.items() if value is not None},
            assistant=self.assistant.change() if self.assistant is not None else None,
        )


_CONNECTION_KEYS = {"url": "caldav", "google_calendar_id": "google"}


def _plain(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


class Credentials(_Body):
    """New credentials for the calendar's kind: CalDAV ``password`` (and ``username``),
    Microsoft 365 ``client_secret`` or ``certificate_pem``, Google ``service_account`` (a
    Google calendar linked with OAuth renews its consent instead: ``calbridge calendars auth
    NAME``)."""

    username: str | None = None
    password: SecretStr | None = None
    client_secret: SecretStr | None = None
    certificate_pem: SecretStr | None = None
    service_account: dict[str, Any] | None = None


def _box() -> SecretBox:
    return SecretBox.from_settings(load_settings())


def _find(session: Session, name: str) -> Calendar:
    calendar = session.scalars(select(Calendar).where(Calendar.name == name)).first()
    if calendar is None:
        raise NotFound(f"no calendar is called '{name}' (see GET /api/calendars)")
    return calendar


def _expiry(value: Any) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _push(kind: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The calendar's push channel as its kind's registry entry describes it."""
    entry = known_kind(kind)
    channel = entry.channel if entry is not None else None
    if channel is None or not settings.get(channel.settings_key):
        return None
    return {"kind": channel.name, "expires_at": _expiry(channel.expiry(settings))}


def _where(calendar: Calendar) -> str | None:
    settings = calendar.settings or {}
    for key in ("url", "mailbox", "calendar_id"):
        if settings.get(key):
            return str(settings[key])
    return None


def _connection(calendar: Calendar) -> dict[str, Any] | None:
    """The calendar's connection settings a person may see (its kind's ``public`` ones)."""
    entry = known_kind(calendar.kind)
    return entry.public_settings(calendar.name, calendar.settings) if entry is not None else None


def calendar_json(session: Session, calendar: Calendar) -> dict[str, Any]:
    """A calendar as the API shows it (no secret, ever)."""
    counts = dict(
        session.execute(
            select(Link.state, func.count())
            .where(Link.calendar_id == calendar.id)
            .group_by(Link.state)
        ).all()
    )
    rejections = session.scalar(select(func.count()).where(Rejection.calendar_id == calendar.id))
    settings = dict(calendar.settings or {})
    return {
        "name": calendar.name,
        "kind": calendar.kind,
        "where": _where(calendar),
        "username": settings.get("username"),
        "connection": _connection(calendar),
        "owner": calendar.owner_user_id,
        "policy": calendar.policy,
        "direction": calendar.direction,
        "horizon_days": calendar.horizon_days,
        "assistant": assistant_json(calendar),
        "state": getattr(calendar, "state", None) or "ok",
        "paused": bool(getattr(calendar, "paused", False)),
        "last_success_at": instant(getattr(calendar, "last_success_at", None)),
        "last_sync_at": instant(calendar.last_sync_at),
        "last_error": calendar.last_error,
        "hint": getattr(calendar, "error_hint", None),
        "next_run_at": instant(getattr(calendar, "next_run_at", None)),
        "push": _push(calendar.kind, settings),
        "links": {state: int(n) for state, n in counts.items()},
        "rejections": int(rejections or 0),
        "created_at": instant(calendar.created_at),
    }


def _add(session: Session, body: CalendarAdd) -> tuple[Calendar, bool]:
    """Store the calendar (after its connection check); True when the check ran."""
    box = _box()
    common: dict[str, Any] = {
        "owner": body.owner,
        "policy": body.policy,
        "direction": body.direction,
        "horizon_days": body.horizon_days,
    }
    assistant = body.assistant.change() if body.assistant is not None else AssistantChange()
    apply_assistant(session, Calendar(name=body.name, direction=body.direction), assistant)
    cal, checked = _add_kind(session, box, body, common)
    apply_assistant(session, cal, assistant)
    return cal, checked


def _add_kind(
    session: Session, box: SecretBox, body: CalendarAdd, common: dict[str, Any]
) -> tuple[Calendar, bool]:
    c: ApiConnection = body.connection
    kind = str(c.model_dump(include={"kind"})["kind"])  # every model's literal "kind"
    cal = linking.add_calendar(session, box, body.name, kind, c.values(), **common)
    secret = box.open(cal.secret, f"calendar '{cal.name}'") if cal.secret else {}
    return cal, not c.needs_consent(secret)


class _RollBack(Exception):
    """Raised inside a connection test's transaction so that nothing is kept."""


@router.get("", summary="Every calendar with its sync state")
def list_calendars(request: Request, _: Caller) -> dict[str, Any]:
    with transaction(request) as session:
        rows = session.scalars(select(Calendar).order_by(Calendar.name))
        return {"items": [calendar_json(session, c) for c in rows], "next_cursor": None}


@router.get("/{name}", summary="One calendar with its sync state")
def get_calendar(request: Request, name: str, _: Caller) -> dict[str, Any]:
    with transaction(request) as session:
        return calendar_json(session, _find(session, name))


@router.post("", status_code=201, summary="Link a calendar (after checking the connection)")
def add_calendar(request: Request, body: CalendarAdd, who: Writer) -> dict[str, Any]:
    with transaction(request) as session:
        calendar, checked = _add(session, body)
        record(
            session,
            actor=who.name,
            subject="calendar",
            subject_id=calendar.id,
            action="added",
            details={"name": calendar.name, "kind": calendar.kind},
        )
        data = calendar_json(session, calendar)
        calendar_id = calendar.id
    data["needs_consent"] = not checked
    if checked:
        _enqueue(request, calendar_id, "manual")
    return data


@router.post("/test", summary="Test a connection without linking anything")
def test_new_connection(request: Request, body: CalendarAdd, _: Writer) -> dict[str, Any]:
    try:
        with transaction(request) as session:
            _calendar, checked = _add(session, body)
            raise _RollBack
    except _RollBack:
        pass
    if not checked:
        return {"ok": True, "detail": "the OAuth client is valid; Google's consent comes next"}
    return {"ok": True, "detail": "calbridge signed in and can read the calendar"}


@router.post("/{name}/test", summary="Test a linked calendar's connection")
def test_connection(request: Request, name: str, _: Writer) -> dict[str, Any]:
    with transaction(request) as session:
        calendar = _find(session, name)
        open_provider(calendar, _box()).check()
    return {"ok": True, "detail": f"calbridge signed in and can read calendar '{name}'"}


@router.patch("/{name}", summary="Change a calendar's settings or credentials in place")
def update_calendar_settings(
    request: Request, name: str, body: CalendarChange, who: Writer
) -> dict[str, Any]:
    """New connection values are checked like an add before they are kept; links, sync token
    and snapshots stay, so nothing is duplicated."""
    return _update(request, name, body, who.name)


@router.put("/{name}/credentials", summary="Replace a calendar's credentials in place")
def update_credentials(
    request: Request, name: str, body: Credentials, who: Writer
) -> dict[str, Any]:
    """The new credentials are checked before they replace the old ones; links and sync state
    stay, so nothing is duplicated."""
    given = body.model_dump(exclude_none=True)
    if not given.keys() - {"username"}:
        raise ConfigError(
            f"calendar '{name}': give the new credentials (password, client_secret, "
            "certificate_pem or service_account)"
        )
    return _update(request, name, CalendarChange(**given), who.name)


def _update(request: Request, name: str, body: CalendarChange, actor: str) -> dict[str, Any]:
    with transaction(request) as session:
        kind = _find(session, name).kind
        calendar = update_calendar(session, _box(), name, body.as_update(kind))
        changed = sorted(body.model_fields_set)
        record(
            session,
            actor=actor,
            subject="calendar",
            subject_id=calendar.id,
            action="updated",
            details={"name": name, "fields": changed},  # names only: values may be secret
        )
        data = calendar_json(session, calendar)
        calendar_id = calendar.id
    _enqueue(request, calendar_id, "manual")
    return data


@router.delete("/{name}", summary="Unlink a calendar (bookings stay)")
def remove_calendar_route(request: Request, name: str, who: Writer) -> dict[str, Any]:
    """The calendar's links are kept as former links: linking the same remote calendar again
    adopts what both sides hold instead of duplicating it."""
    with transaction(request) as session:
        _find(session, name)
    done = unlink_calendar(store_of(request), _box(), name, actor=who.name)
    return {
        "removed": name,
        "links_kept_for_relinking": done.links_kept,
        "push_channel_note": done.channel_note,
        "detail": "every booking is kept; nothing was deleted on the calendar itself",
    }


def _enqueue(request: Request, calendar_id: int, trigger: str, *, full: bool = False) -> None:
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.sync_calendar(calendar_id, trigger=trigger, full=full)


Action = Literal["sync", "resync", "pause", "resume", "confirm"]


@router.post("/{name}/{action}", summary="Sync now, full resync, pause, resume, confirm")
def calendar_action(request: Request, name: str, action: Action, who: Writer) -> dict[str, Any]:
    """``sync``: sync now; ``resync``: full resync (creates no duplicates); ``pause`` /
    ``resume``; ``confirm``: let a sync held by the mass-cancellation guard go on."""
    jobs = request.app.state.jobs
    with transaction(request) as session:
        if action == "sync":
            calendar = sync_control.sync_now(session, jobs, name, actor=who.name)
        elif action == "resync":
            calendar = sync_control.full_resync(session, jobs, name, actor=who.name)
        elif action == "pause":
            calendar = sync_control.pause(session, name, actor=who.name)
        elif action == "resume":
            calendar = sync_control.resume(session, name, actor=who.name)
        else:
            calendar = sync_control.confirm(session, jobs, name, actor=who.name)
        return calendar_json(session, calendar)
