"""The directory JSON format (``docs/examples/directory.json``) and its validation.

Validation runs completely before anything is written and reports *every* problem with its JSON
path (``$.contacts[1].company: ...``). References may point at ids in the file or already in the
database, so a file can update part of a directory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from calbridge.domain.email import is_valid_email, normalize_email
from calbridge.domain.event import is_zone
from calbridge.errors import ValidationFailed

UserType = Literal["named", "concurrent", "virtual_assistant"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """PostgreSQL cannot store NUL characters; refuse them here, with their JSON path."""
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise ValueError("contains a NUL character")
        return value


class SettingsIn(_Strict):
    """Event System Settings (SPEC §1): what the assignment falls back to."""

    default_account: str = Field(
        description="Company or contact id: the Event Client when the booker matches nobody"
    )
    default_event_manager: str | None = Field(
        default=None, description="User id: the Event Manager when no rule names one"
    )
    auto_assign_event_manager: bool = Field(
        default=False, description="Make the booking user the Event Manager when it is a user"
    )
    virtual_assistant_user: str = Field(
        description="Id of the virtual_assistant user: Booked By for bookings from outside"
    )
    venue_timezone: str | None = Field(
        default=None,
        description=(
            "IANA time zone of the venue (e.g. Europe/London): the zone of times typed without "
            "one in `events create/update`; omitted or null: such times are floating"
        ),
    )


class CompanyIn(_Strict):
    """A CRM company."""

    id: str = Field(min_length=1, max_length=200, description="Unique among companies and contacts")
    name: str = Field(min_length=1, max_length=500)


class ContactIn(_Strict):
    """A CRM contact (a person), optionally of one company."""

    id: str = Field(min_length=1, max_length=200, description="Unique among companies and contacts")
    name: str = Field(min_length=1, max_length=500)
    company: str | None = Field(default=None, description="Company id, or null")
    primary_email: str = Field(description="The contact's main address")
    alternate_emails: list[str] = Field(
        default_factory=list, description="Other addresses that identify this contact"
    )


class EmailAccountIn(_Strict):
    """One address of a user."""

    address: str
    primary: bool = Field(default=False, description="At most one per user")


class UserIn(_Strict):
    """A staff user of the booking system."""

    id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=500)
    type: UserType = Field(description="named, concurrent or virtual_assistant (at most one)")
    active: bool = Field(default=True, description="false: deactivated (import never deletes)")
    crm_account: str | None = Field(
        default=None, description="Company or contact id the user belongs to, or null"
    )
    email_accounts: list[EmailAccountIn] = Field(default_factory=list)


class LocationIn(_Strict):
    """A venue room (a location events book), optionally linked to a room resource."""

    id: str = Field(min_length=1, max_length=200, description="Unique among locations")
    name: str = Field(min_length=1, max_length=500)
    capacity: int | None = Field(default=None, ge=1, description="People it holds, or null")
    active: bool = Field(default=True, description="false: no longer bookable (never deleted)")
    resource_address: str | None = Field(
        default=None,
        description=(
            "The room resource's address: a Google Workspace resource calendar's email, an "
            "Exchange room mailbox or a CalDAV room principal's address; null: none"
        ),
    )
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names a calendar's location text may use for this room",
    )


class DirectoryIn(_Strict):
    """A calbridge directory: settings, companies, contacts, users and locations (imported by
    id)."""

    settings: SettingsIn | None = Field(
        default=None, description="Omitted: the stored settings stay as they are"
    )
    companies: list[CompanyIn] = Field(default_factory=list)
    contacts: list[ContactIn] = Field(default_factory=list)
    users: list[UserIn] = Field(default_factory=list)
    locations: list[LocationIn] = Field(default_factory=list)


def directory_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the directory format, as `directory schema` prints
    it. Semantic rules (references, duplicate ids, address syntax) are checked on import."""
    schema = DirectoryIn.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://calbridge.example/schemas/directory.json",
        **schema,
        "title": "calbridge directory",
    }


@dataclass
class KnownIds:
    """What already exists in the database, for references a file does not define itself."""

    companies: set[str] = field(default_factory=set)
    contacts: set[str] = field(default_factory=set)
    users: dict[str, tuple[str, bool]] = field(default_factory=dict)  # id -> (type, active)
    # the stored locations' names/aliases (room keys) and resource addresses, by location id
    room_names: dict[str, str] = field(default_factory=dict)  # room key -> location id
    room_addresses: dict[str, str] = field(default_factory=dict)  # address -> location id


def _path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_directory(text: str) -> DirectoryIn:
    """Parse JSON text into the directory model; raise ValidationFailed listing every problem."""
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"$: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise ValidationFailed("the directory file is not valid JSON", [problem]) from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    try:
        return DirectoryIn.model_validate(raw)
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValidationError as exc:
        problems = [f"{_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ValidationFailed(
            f"the directory file has {len(problems)} problem(s)", problems
        ) from exc


def decode_directory(data: bytes, name: str) -> str:
    """The text of a directory file, which must be UTF-8 (a BOM is allowed)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationFailed(
            f"the directory file {name} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
            f"{line}); save it as UTF-8 and import it again; nothing was imported"
        ) from exc


def _too_deep() -> ValidationFailed:
    return ValidationFailed(
        "the directory file nests JSON too deeply to be a directory (a directory is a few "
        "levels deep: objects holding lists of objects); nothing was imported"
    )


def check_directory(d: DirectoryIn, known: KnownIds) -> list[str]:
    """Every semantic problem in ``d`` (given what the database already holds)."""
    problems: list[str] = []
    problems += _duplicates(d)
    company_ids = known.companies | {c.id for c in d.companies}
    contact_ids = known.contacts | {c.id for c in d.contacts}
    users = dict(known.users) | {u.id: (u.type, u.active) for u in d.users}
    for i, c in enumerate(d.contacts):
        if c.company is not None and c.company not in company_ids:
            problems.append(f"$.contacts[{i}].company: unknown company '{c.company}'")
        problems += _emails(f"$.contacts[{i}]", c.primary_email, c.alternate_emails)
    problems += _users(d, company_ids | contact_ids)
    if d.settings is not None:
        problems += _settings(d.settings, company_ids | contact_ids, users)
    problems += _locations(d.locations, known)
    return problems


def _locations(locations: list[LocationIn], known: KnownIds) -> list[str]:
    """Addresses well-formed; no address, name or alias held by two rooms (one would never be
    matched); locations in the file replace their stored selves."""
    from calbridge.domain.rooms import room_key

    problems: list[str] = []
    counts = Counter(loc.id for loc in locations)
    in_file = {loc.id for loc in locations}
    names = {k: v for k, v in known.room_names.items() if v not in in_file}
    addresses = {k: v for k, v in known.room_addresses.items() if v not in in_file}
    for i, loc in enumerate(locations):
        where = f"$.locations[{i}]"
        if counts[loc.id] > 1:
            problems.append(f"{where}.id: duplicate id '{loc.id}'")
        if loc.resource_address is not None:
            if not is_valid_email(loc.resource_address):
                problems.append(
                    f"{where}.resource_address: malformed address '{loc.resource_address}'"
                )
            else:
                address = normalize_email(loc.resource_address)
                other = addresses.setdefault(address, loc.id)
                if other != loc.id:
                    problems.append(
                        f"{where}.resource_address: '{loc.resource_address}' is already the "
                        f"address of location '{other}'"
                    )
        for path, text in [(f"{where}.name", loc.name)] + [
            (f"{where}.aliases[{j}]", alias) for j, alias in enumerate(loc.aliases)
        ]:
            key = room_key(text)
            if not key:
                problems.append(f"{path}: empty")
                continue
            other = names.setdefault(key, loc.id)
            if other != loc.id:
                problems.append(
                    f"{path}: '{text}' already names location '{other}' (names and aliases "
                    "compare case- and space-insensitively)"
                )
    return problems


def _duplicates(d: DirectoryIn) -> list[str]:
    problems: list[str] = []
    groups: list[tuple[str, Sequence[CompanyIn | ContactIn | UserIn]]] = [
        ("companies", d.companies),
        ("contacts", d.contacts),
        ("users", d.users),
    ]
    for kind, items in groups:
        counts = Counter(item.id for item in items)
        for i, item in enumerate(items):
            if counts[item.id] > 1:
                problems.append(f"$.{kind}[{i}].id: duplicate id '{item.id}'")
    company_ids = {c.id for c in d.companies}
    for i, c in enumerate(d.contacts):
        if c.id in company_ids:
            problems.append(
                f"$.contacts[{i}].id: '{c.id}' is also a company id "
                "(companies and contacts share one id space)"
            )
    vas = [i for i, u in enumerate(d.users) if u.type == "virtual_assistant"]
    for i in vas[1:]:
        problems.append(f"$.users[{i}].type: only one virtual_assistant user is allowed")
    return problems


def _emails(where: str, primary: str, alternates: list[str]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for path, address in [(f"{where}.primary_email", primary)] + [
        (f"{where}.alternate_emails[{j}]", a) for j, a in enumerate(alternates)
    ]:
        if not is_valid_email(address):
            problems.append(f"{path}: malformed email address '{address}'")
            continue
        norm = normalize_email(address)
        if norm in seen:
            problems.append(f"{path}: '{address}' is listed twice for this contact")
        seen.add(norm)
    return problems


def _users(d: DirectoryIn, account_ids: set[str]) -> list[str]:
    problems: list[str] = []
    for i, u in enumerate(d.users):
        if u.crm_account is not None and u.crm_account not in account_ids:
            problems.append(f"$.users[{i}].crm_account: unknown CRM account '{u.crm_account}'")
        seen: set[str] = set()
        for j, acct in enumerate(u.email_accounts):
            path = f"$.users[{i}].email_accounts[{j}].address"
            if not is_valid_email(acct.address):
                problems.append(f"{path}: malformed email address '{acct.address}'")
                continue
            norm = normalize_email(acct.address)
            if norm in seen:
                problems.append(f"{path}: '{acct.address}' is listed twice for this user")
            seen.add(norm)
        if sum(a.primary for a in u.email_accounts) > 1:
            problems.append(f"$.users[{i}].email_accounts: more than one account is marked primary")
    return problems


def _settings(
    s: SettingsIn, account_ids: set[str], users: dict[str, tuple[str, bool]]
) -> list[str]:
    problems: list[str] = []
    if s.default_account not in account_ids:
        problems.append(f"$.settings.default_account: unknown account '{s.default_account}'")
    va = users.get(s.virtual_assistant_user)
    if va is None:
        problems.append(
            f"$.settings.virtual_assistant_user: unknown user '{s.virtual_assistant_user}'"
        )
    elif va[0] != "virtual_assistant":
        problems.append(
            f"$.settings.virtual_assistant_user: user '{s.virtual_assistant_user}' is of type "
            f"'{va[0]}', not 'virtual_assistant'"
        )
    if s.venue_timezone is not None and not is_zone(s.venue_timezone):
        problems.append(
            f"$.settings.venue_timezone: unknown time zone '{s.venue_timezone}' "
            "(use an IANA name like Europe/London)"
        )
    if s.default_event_manager is not None:
        manager = users.get(s.default_event_manager)
        if manager is None:
            problems.append(
                f"$.settings.default_event_manager: unknown user '{s.default_event_manager}'"
            )
        elif not manager[1]:
            problems.append(
                f"$.settings.default_event_manager: user '{s.default_event_manager}' is not active"
            )
    return problems


def raise_if_problems(problems: list[str], describe: Callable[[int], str]) -> None:
    if problems:
        raise ValidationFailed(describe(len(problems)), problems)
