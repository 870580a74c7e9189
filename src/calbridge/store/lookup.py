"""The store's side of the assignment rules: indexed email lookups and the system settings.

``users_by_email`` and ``contacts_by_email`` are one indexed query each, whatever the size of
the directory; the rules in ``domain.assignment`` decide.

The two lookups run for every event that arrives from a calendar and tens of thousands of times
in ``calbridge resolve --batch``, where SQLAlchemy's per-statement work (cache key, result
metadata, row objects) costs several times the indexed query itself (~50 µs against ~8 µs on
SQLite). So each statement is compiled once per dialect and run on the DBAPI cursor of the
session's own connection: same transaction, no per-call overhead. Such statements do not pass
through SQLAlchemy's ``before_cursor_execute`` event; count them at the DBAPI level.

A caller that knows many addresses up front (``resolve --batch``) calls
:meth:`StoreLookup.prefetch` with a chunk of them: two ``IN`` queries answer the whole chunk,
and the per-address lookups that follow read the answer instead of the database (~40 queries
for 10,000 addresses instead of ~18,000). The rows are the same as the one-address queries'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import BindParameter, ClauseElement

from calbridge.domain.assignment import (
    ASSIGNABLE_USER_TYPES,
    AccountRef,
    AssignmentSettings,
    ContactMatch,
    Ref,
    UserMatch,
)
from calbridge.domain.event import is_zone
from calbridge.errors import ConfigError
from calbridge.store.models import Company, Contact, ContactEmail, SystemSettings, User, UserEmail

_crm_contact = aliased(Contact)
_crm_company = aliased(Company)
_crm_contact_company = aliased(Company)

_USERS = (
    select(
        User.id,
        User.name,
        User.type,
        User.active,
        UserEmail.is_primary,
        User.crm_account_kind,
        User.crm_account_id,
        _crm_contact.name,
        _crm_company.name,
        _crm_contact_company.id,
        _crm_contact_company.name,
    )
    .join(UserEmail, UserEmail.user_id == User.id)
    .outerjoin(
        _crm_contact,
        and_(User.crm_account_kind == "contact", _crm_contact.id == User.crm_account_id),
    )
    .outerjoin(_crm_contact_company, _crm_contact_company.id == _crm_contact.company_id)
    .outerjoin(
        _crm_company,
        and_(User.crm_account_kind == "company", _crm_company.id == User.crm_account_id),
    )
    .where(User.active.is_(True), User.type.in_(ASSIGNABLE_USER_TYPES))
)
_CONTACTS = (
    select(Contact.id, Contact.name, ContactEmail.is_primary, Company.id, Company.name)
    .join(ContactEmail, ContactEmail.contact_id == Contact.id)
    .outerjoin(Company, Company.id == Contact.company_id)
)
_USERS_BY_EMAIL = _USERS.where(UserEmail.address == bindparam("address", required=False))
_CONTACTS_BY_EMAIL = _CONTACTS.where(ContactEmail.address == bindparam("address", required=False))
# The same two queries for many addresses at once, each row ending with the address it answers.
_MANY: BindParameter[list[str]] = bindparam("addresses", expanding=True)
_USERS_BY_EMAILS = _USERS.add_columns(UserEmail.address).where(UserEmail.address.in_(_MANY))
_CONTACTS_BY_EMAILS = _CONTACTS.add_columns(ContactEmail.address).where(
    ContactEmail.address.in_(_MANY)
)
PREFETCH_CHUNK = 500  # addresses per IN list (well under every database's parameter limit)


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled for one dialect, taking the one parameter ``address``."""

    sql: str
    fixed: dict[str, Any]
    order: tuple[str, ...] | None  # parameter order for positional paramstyles (SQLite's "?")

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> _Prepared:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(str(compiled), dict(compiled.construct_params()), order)

    def params(self, address: str) -> dict[str, Any] | tuple[Any, ...]:
        values = {**self.fixed, "address": address}
        return values if self.order is None else tuple(values[name] for name in self.order)


@lru_cache(maxsize=8)
def _prepared(dialect: Dialect) -> tuple[_Prepared, _Prepared]:
    return (
        _Prepared.compile(_USERS_BY_EMAIL, dialect),
        _Prepared.compile(_CONTACTS_BY_EMAIL, dialect),
    )


class StoreLookup:
    """``DirectoryLookup`` over a session (reads what the session's transaction sees)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._users, self._contacts = _prepared(session.get_bind().dialect)
        self._user_rows: dict[str, list[Any]] = {}  # prefetched answers by address
        self._contact_rows: dict[str, list[Any]] = {}

    def prefetch(self, addresses: Iterable[str]) -> None:
        """Answer the lookups of these (normalized) addresses with two queries per chunk; the
        answers replace earlier ones. Only for a read-only pass: a directory change made in
        this session after the prefetch is not seen by the prefetched addresses."""
        wanted = list(dict.fromkeys(addresses))
        for at in range(0, len(wanted), PREFETCH_CHUNK):
            chunk = wanted[at : at + PREFETCH_CHUNK]
            for known, many in (
                (self._user_rows, _USERS_BY_EMAILS),
                (self._contact_rows, _CONTACTS_BY_EMAILS),
            ):
                found: dict[str, list[Any]] = {address: [] for address in chunk}
                for row in self.session.execute(many, {"addresses": chunk}):
                    found[row[-1]].append(tuple(row[:-1]))
                known.update(found)

    def _rows(self, statement: _Prepared, address: str, known: dict[str, list[Any]]) -> list[Any]:
        if address in known:
            return known[address]
        if self.session.autoflush:  # as session.execute would: see pending ORM changes
            self.session.flush()
        with closing(self.session.connection().connection.cursor()) as cursor:
            cursor.execute(statement.sql, statement.params(address))
            return list(cursor.fetchall())

    def users_by_email(self, address: str) -> list[UserMatch]:
        out = []
        for row in self._rows(self._users, address, self._user_rows):
            uid, uname, utype, active, primary, kind, crm_id, contact_name, company_name = row[:9]
            cc_id, cc_name = row[9:]
            account: AccountRef | None = None
            company: Ref | None = None
            if kind == "contact" and contact_name is not None:
                account = AccountRef(crm_id, contact_name, "contact")
                company = Ref(cc_id, cc_name) if cc_id is not None else None
            elif kind == "company" and company_name is not None:
                account = AccountRef(crm_id, company_name, "company")
            out.append(
                UserMatch(Ref(uid, uname), bool(primary), account, company, utype, bool(active))
            )
        return out

    def contacts_by_email(self, address: str) -> list[ContactMatch]:
        return [
            ContactMatch(
                Ref(cid, cname),
                bool(primary),
                Ref(co_id, co_name) if co_id is not None else None,
            )
            for cid, cname, primary, co_id, co_name in self._rows(
                self._contacts, address, self._contact_rows
            )
        ]


def account_ref(session: Session, account_id: str) -> AccountRef | None:
    company = session.get(Company, account_id)
    if company is not None:
        return AccountRef(company.id, company.name, "company")
    contact = session.get(Contact, account_id)
    if contact is not None:
        return AccountRef(contact.id, contact.name, "contact")
    return None


def hold_people(session: Session, events: Sequence[Any]) -> list[Any]:
    """The clients, contacts and users a page of bookings names, read in three queries; keep
    the list while the page is rendered and :func:`account_ref` / :func:`user_ref` find them
    in the identity map instead of asking once per booking."""
    accounts = {e.client_id for e in events if e.client_id}
    contacts = accounts | {e.client_contact_id for e in events if e.client_contact_id}
    users = {u for e in events for u in (e.booked_by_id, e.event_manager_id) if u}
    held: list[Any] = []
    for model, ids in ((Company, accounts), (Contact, contacts), (User, users)):
        found = list(ids)
        for start in range(0, len(found), 500):
            chunk = found[start : start + 500]
            held += session.scalars(select(model).where(model.id.in_(chunk))).all()
    return held


def user_ref(session: Session, user_id: str | None) -> Ref | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return Ref(user.id, user.name) if user is not None else None


@dataclass(frozen=True)
class _StoredSettings:
    """The settings row and what it points at, read once (each is one primary-key query)."""

    row: SystemSettings | None
    default_account: AccountRef | None = None
    virtual_assistant: User | None = None
    default_event_manager: User | None = None

    @classmethod
    def read(cls, session: Session) -> _StoredSettings:
        row = session.get(SystemSettings, 1)
        if row is None:
            return cls(None)

        def user(uid: str | None) -> User | None:
            return session.get(User, uid) if uid is not None else None

        return cls(
            row,
            account_ref(session, row.default_account_id) if row.default_account_id else None,
            user(row.virtual_assistant_user_id),
            user(row.default_event_manager_id),
        )

    def problems(self) -> list[str]:
        fix = 'fix it in the directory file\'s "settings" and run `calbridge directory import`'
        row = self.row
        if row is None:
            return [f"no Event System Settings are stored; {fix}"]
        problems = []
        if self.default_account is None:
            problems.append(f"the Default Account '{row.default_account_id}' does not exist; {fix}")
        va = self.virtual_assistant
        if va is None:
            problems.append(
                f"the Virtual Assistant user '{row.virtual_assistant_user_id}' does not exist; "
                f"{fix}"
            )
        elif va.type != "virtual_assistant":
            problems.append(
                f"user '{va.id}' is the Virtual Assistant but of type '{va.type}'; {fix}"
            )
        if row.venue_timezone is not None and not is_zone(row.venue_timezone):
            problems.append(
                f"the venue time zone '{row.venue_timezone}' is not an IANA zone; {fix}"
            )
        manager = self.default_event_manager
        if row.default_event_manager_id is not None and (manager is None or not manager.active):
            problems.append(
                f"the Default Event Manager '{row.default_event_manager_id}' is not an active "
                f"user; {fix}"
            )
        return problems


def venue_zone(session: Session) -> str | None:
    """The venue's IANA time zone (directory setting ``venue_timezone``), if one is set."""
    row = session.get(SystemSettings, 1)
    return row.venue_timezone if row is not None else None


def settings_problems(session: Session) -> list[str]:
    """What is wrong with the stored Event System Settings, as things an admin can fix."""
    return _StoredSettings.read(session).problems()


def settings_warnings(session: Session) -> list[str]:
    """What the stored Event System Settings leave to a default an admin may not expect."""
    row = session.get(SystemSettings, 1)
    if row is None or row.venue_timezone is not None:
        return []  # no settings at all is a problem (settings_problems), not a warning
    return [
        "no venue time zone is set: times typed without an offset or --timezone "
        "(`calbridge events create/update`) are stored floating, the same wall-clock time in "
        "every zone, and times typed with an offset are kept in UTC; set "
        '"venue_timezone" (an IANA name, e.g. Europe/London) in the directory file\'s '
        '"settings" and run `calbridge directory import`'
    ]


def load_assignment_settings(session: Session) -> AssignmentSettings:
    """The settings the rules need; ConfigError (listing what to fix) when they are unusable."""
    stored = _StoredSettings.read(session)
    problems = stored.problems()
    if problems:
        raise ConfigError("the booking system is not configured: " + "; ".join(problems))
    assert stored.row is not None and stored.default_account is not None
    va, manager = stored.virtual_assistant, stored.default_event_manager
    assert va is not None
    return AssignmentSettings(
        default_account=stored.default_account,
        default_event_manager=Ref(manager.id, manager.name) if manager is not None else None,
        auto_assign_event_manager=stored.row.auto_assign_event_manager,
        virtual_assistant=Ref(va.id, va.name),
    )
