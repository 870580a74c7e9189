"""The store's side of the assignment rules: indexed email lookups and the system settings.

``users_by_email`` and ``contacts_by_email`` are one indexed query each, whatever the size of
the directory; the rules in ``domain.assignment`` decide.

The two lookups run for every event that arrives from a calendar and tens of thousands of times
in ``calbridge resolve --batch``, where SQLAlchemy's per-statement work (cache key, result
metadata, row objects) costs several times the indexed query itself (~50 µs against ~8 µs on
SQLite). So they run on the DBAPI cursor of the session's own connection: same transaction,
no per-call overhead. Such statements do not pass through SQLAlchemy's
``before_cursor_execute`` event; count them at the DBAPI level. They are written out as SQL
for the dialect (:func:`_prepared`) rather than compiled from :func:`_statements`: building
and compiling those joins cost a ``calbridge sync`` process about 15 ms, a few percent of a
1,000-event import. Tests run both forms on SQLite and PostgreSQL and compare the rows.

A caller that knows many addresses up front (``resolve --batch``) calls
:meth:`StoreLookup.prefetch` with a chunk of them: two ``IN`` queries answer the whole chunk,
and the per-address lookups that follow read the answer instead of the database (~40 queries
for 10,000 addresses instead of ~18,000). The rows are the same as the one-address queries'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import BindParameter

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

PREFETCH_CHUNK = 500  # addresses per IN list (well under every database's parameter limit)

_USER_COLUMNS = (
    "users.id, users.name, users.type, users.active, user_emails.is_primary, "
    "users.crm_account_kind, users.crm_account_id, crm_contact.name, crm_company.name, "
    "crm_contact_company.id, crm_contact_company.name"
)
_USER_FROM = (
    "users JOIN user_emails ON user_emails.user_id = users.id "
    "LEFT OUTER JOIN contacts AS crm_contact "
    "ON users.crm_account_kind = 'contact' AND crm_contact.id = users.crm_account_id "
    "LEFT OUTER JOIN companies AS crm_contact_company "
    "ON crm_contact_company.id = crm_contact.company_id "
    "LEFT OUTER JOIN companies AS crm_company "
    "ON users.crm_account_kind = 'company' AND crm_company.id = users.crm_account_id"
)
_CONTACT_COLUMNS = (
    "contacts.id, contacts.name, contact_emails.is_primary, companies.id, companies.name"
)
_CONTACT_FROM = (
    "contacts JOIN contact_emails ON contact_emails.contact_id = contacts.id "
    "LEFT OUTER JOIN companies ON companies.id = contacts.company_id"
)
# a DB-API paramstyle's placeholder for the one parameter, ``address``
_PLACEHOLDERS = {"qmark": "?", "named": ":address", "format": "%s", "pyformat": "%(address)s"}
assert all(kind.isidentifier() for kind in ASSIGNABLE_USER_TYPES)  # written into the SQL


@dataclass(frozen=True)
class _Prepared:
    """A one-address lookup written for one dialect, run on the DB-API cursor."""

    sql: str
    named: bool  # the parameter goes by name (a dict) rather than by position (a tuple)

    def params(self, address: str) -> dict[str, Any] | tuple[Any, ...]:
        return {"address": address} if self.named else (address,)


@lru_cache(maxsize=8)
def _prepared(dialect: Dialect) -> tuple[_Prepared, _Prepared]:
    """The two one-address lookups, as SQL for ``dialect``: the queries :func:`_statements`
    builds, written out so that a process that resolves a few bookers (every ``calbridge
    sync``) neither builds nor compiles SQLAlchemy statements for them (tests run both on
    SQLite and PostgreSQL and compare the rows)."""
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        raise ConfigError(
            f"the database driver {dialect.driver!r} passes parameters in the "
            f"{dialect.paramstyle!r} style, which calbridge does not write; use SQLite or "
            "PostgreSQL (psycopg)"
        )
    true = "true" if dialect.supports_native_boolean else "1"
    types = ", ".join(f"'{kind}'" for kind in ASSIGNABLE_USER_TYPES)
    users = (
        f"SELECT {_USER_COLUMNS} FROM {_USER_FROM} WHERE users.active IS {true} "
        f"AND users.type IN ({types}) AND user_emails.address = {placeholder}"
    )
    contacts = (
        f"SELECT {_CONTACT_COLUMNS} FROM {_CONTACT_FROM} "
        f"WHERE contact_emails.address = {placeholder}"
    )
    named = dialect.paramstyle in ("named", "pyformat")
    return _Prepared(users, named), _Prepared(contacts, named)


@cache
def _statements() -> dict[str, Select[Any]]:
    """The lookups as SQLAlchemy statements: ``users`` and ``contacts`` (one address, the
    parameter ``address``), and ``users_many`` and ``contacts_many`` (the list parameter
    ``addresses``; each row ends with the address it answers) for :meth:`StoreLookup.prefetch`.
    Built on first use."""
    crm_contact, crm_company, crm_contact_company = (
        aliased(Contact, name="crm_contact"),
        aliased(Company, name="crm_company"),
        aliased(Company, name="crm_contact_company"),
    )
    users = (
        select(
            User.id,
            User.name,
            User.type,
            User.active,
            UserEmail.is_primary,
            User.crm_account_kind,
            User.crm_account_id,
            crm_contact.name,
            crm_company.name,
            crm_contact_company.id,
            crm_contact_company.name,
        )
        .join(UserEmail, UserEmail.user_id == User.id)
        .outerjoin(
            crm_contact,
            and_(User.crm_account_kind == "contact", crm_contact.id == User.crm_account_id),
        )
        .outerjoin(crm_contact_company, crm_contact_company.id == crm_contact.company_id)
        .outerjoin(
            crm_company,
            and_(User.crm_account_kind == "company", crm_company.id == User.crm_account_id),
        )
        .where(User.active.is_(True), User.type.in_(ASSIGNABLE_USER_TYPES))
    )
    contacts = (
        select(Contact.id, Contact.name, ContactEmail.is_primary, Company.id, Company.name)
        .join(ContactEmail, ContactEmail.contact_id == Contact.id)
        .outerjoin(Company, Company.id == Contact.company_id)
    )
    many: BindParameter[list[str]] = bindparam("addresses", expanding=True)
    return {
        "users": users.where(UserEmail.address == bindparam("address")),
        "contacts": contacts.where(ContactEmail.address == bindparam("address")),
        "users_many": users.add_columns(UserEmail.address).where(UserEmail.address.in_(many)),
        "contacts_many": contacts.add_columns(ContactEmail.address).where(
            ContactEmail.address.in_(many)
        ),
    }


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
        statements = _statements()
        for at in range(0, len(wanted), PREFETCH_CHUNK):
            chunk = wanted[at : at + PREFETCH_CHUNK]
            for known, many in (
                (self._user_rows, statements["users_many"]),
                (self._contact_rows, statements["contacts_many"]),
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
