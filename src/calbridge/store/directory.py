"""Directory import (upsert by id, one transaction) and export (the same format).

Import never deletes: an id missing from a file stays as it is (deactivate a user with
``"active": false``). Importing the same file twice changes nothing, and the report says so.
Writes are bulk statements, so a 100,000-contact directory imports in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from calbridge.domain.email import normalize_email
from calbridge.errors import ValidationFailed
from calbridge.store.directory_schema import (
    DirectoryIn,
    KnownIds,
    check_directory,
    parse_directory,
    raise_if_problems,
)
from calbridge.store.models import (
    Base,
    Company,
    Contact,
    ContactEmail,
    Location,
    SystemSettings,
    User,
    UserEmail,
)


def _table(model: type[Base]) -> Table:
    return Base.metadata.tables[model.__tablename__]


@dataclass(frozen=True)
class SharedAddress:
    """An address that several users (or several contacts) have: every booking from it is
    flagged ambiguous. A warning, not an error: the rules still decide."""

    address: str
    kind: str  # "users" | "contacts"
    records: tuple[tuple[str, str], ...]  # (id, name), by id

    def message(self) -> str:
        who = ", ".join(f"{rid} ({name})" for rid, name in self.records)
        singular = self.kind[:-1]
        return (
            f"address '{self.address}' belongs to {len(self.records)} {self.kind}: {who}; every "
            f"booking from it is flagged ambiguous — keep it on one {singular} in the directory "
            "file and run `calbridge directory import` again"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "records": [{"id": rid, "name": name} for rid, name in self.records],
            "message": self.message(),
        }


def shared_addresses(session: Session) -> list[SharedAddress]:
    """Each address shared by several users, then each shared by several contacts."""
    out: list[SharedAddress] = []
    groups: list[tuple[str, Any, Any, Any]] = [
        ("users", UserEmail, UserEmail.user_id, User),
        ("contacts", ContactEmail, ContactEmail.contact_id, Contact),
    ]
    for kind, table, owner, model in groups:
        shared = (
            select(table.address)
            .group_by(table.address)
            .having(func.count(func.distinct(owner)) > 1)
        )
        rows = session.execute(
            select(table.address, model.id, model.name)
            .join(model, model.id == owner)
            .where(table.address.in_(shared))
            .distinct()
            .order_by(table.address, model.id)
        ).all()
        by_address: dict[str, list[tuple[str, str]]] = {}
        for address, rid, name in rows:
            by_address.setdefault(address, []).append((rid, name))
        out += [SharedAddress(a, kind, tuple(r)) for a, r in by_address.items()]
    return out


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    settings_changed: bool = False
    warnings: list[SharedAddress] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.settings_changed or any(self.created.values()) or any(self.updated.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "settings_changed": self.settings_changed,
            "changed": self.changed,
            "warnings": [w.as_dict() for w in self.warnings],
        }


def known_ids(session: Session) -> KnownIds:
    users = {
        uid: (utype, bool(active))
        for uid, utype, active in session.execute(select(User.id, User.type, User.active))
    }
    from calbridge.store.locations import known_rooms

    names, addresses = known_rooms(session)
    return KnownIds(
        companies=set(session.scalars(select(Company.id))),
        contacts=set(session.scalars(select(Contact.id))),
        users=users,
        room_names=names,
        room_addresses=addresses,
    )


def import_directory(session: Session, text: str, *, strict: bool = False) -> ImportReport:
    """Validate then upsert a whole directory file; raise ValidationFailed and write nothing.
    The report's ``warnings`` list every address several users (or contacts) share once the
    file is in; ``strict`` turns them into problems (the caller's transaction must then be
    rolled back: :class:`ValidationFailed` does that in a ``Store.session``)."""
    d = parse_directory(text)
    raise_if_problems(
        check_directory(d, known_ids(session)),
        lambda n: f"the directory file has {n} problem(s); nothing was imported",
    )
    report = ImportReport()
    contact_ids = set(session.scalars(select(Contact.id))) | {c.id for c in d.contacts}
    _upsert(
        session,
        "companies",
        _table(Company),
        [{"id": c.id, "name": c.name, "position": i} for i, c in enumerate(d.companies)],
        report,
    )
    contact_rows = [
        {
            "id": c.id,
            "name": c.name,
            "company_id": c.company,
            "primary_email": c.primary_email.strip(),
            "position": i,
        }
        for i, c in enumerate(d.contacts)
    ]
    contact_emails = {
        c.id: [(e.strip(), j == 0) for j, e in enumerate([c.primary_email, *c.alternate_emails])]
        for c in d.contacts
    }
    _upsert(
        session,
        "contacts",
        _table(Contact),
        contact_rows,
        report,
        _table(ContactEmail),
        "contact_id",
        contact_emails,
    )
    user_rows = [
        {
            "id": u.id,
            "name": u.name,
            "type": u.type,
            "active": u.active,
            "crm_account_id": u.crm_account,
            "crm_account_kind": None
            if u.crm_account is None
            else ("contact" if u.crm_account in contact_ids else "company"),
            "position": i,
        }
        for i, u in enumerate(d.users)
    ]
    user_emails = {
        u.id: [(a.address.strip(), a.primary) for a in u.email_accounts] for u in d.users
    }
    _upsert(
        session,
        "users",
        _table(User),
        user_rows,
        report,
        _table(UserEmail),
        "user_id",
        user_emails,
    )
    _upsert(
        session,
        "locations",
        _table(Location),
        [
            {
                "id": loc.id,
                "name": loc.name,
                "capacity": loc.capacity,
                "active": loc.active,
                "resource_address": None
                if loc.resource_address is None
                else normalize_email(loc.resource_address),
                "resource_display": None
                if loc.resource_address is None
                else loc.resource_address.strip(),
                "aliases": list(loc.aliases),
                "position": i,
            }
            for i, loc in enumerate(d.locations)
        ],
        report,
    )
    if d.settings is not None:
        report.settings_changed = _save_settings(session, d)
    session.flush()
    report.warnings = shared_addresses(session)
    if strict and report.warnings:
        raise ValidationFailed(
            f"{len(report.warnings)} address(es) are shared (--strict); nothing was imported",
            [w.message() for w in report.warnings],
        )
    if report.changed:
        _refresh_statistics(session)
    return report


def _refresh_statistics(session: Session) -> None:
    """Let PostgreSQL's planner see the new rows now rather than after autovacuum's next visit:
    with the statistics of an empty table it plans the email lookups for the wrong sizes."""
    if session.get_bind().dialect.name == "postgresql":
        tables = ", ".join(
            _table(m).name for m in (Company, Contact, ContactEmail, User, UserEmail)
        )
        session.connection().exec_driver_sql(f"ANALYZE {tables}")


def _upsert(
    session: Session,
    kind: str,
    table: Table,
    rows: list[dict[str, Any]],
    report: ImportReport,
    email_table: Table | None = None,
    owner_column: str = "",
    emails: dict[str, list[tuple[str, bool]]] | None = None,
) -> None:
    columns = list(rows[0].keys()) if rows else []
    existing: dict[str, tuple[Any, ...]] = {}
    if rows:
        cols = [table.c[name] for name in columns]
        existing = {row[0]: tuple(row) for row in session.execute(select(*cols))}
        at = columns.index("position")
        _place(rows, {oid: old[at] for oid, old in existing.items()})
    current_emails = (
        _emails_of(session, email_table, owner_column) if email_table is not None else {}
    )
    new_rows, changed_rows, email_owners = [], [], []
    for row in rows:
        wanted = tuple(row[name] for name in columns)
        old = existing.get(row["id"])
        email_changed = (
            emails is not None and current_emails.get(row["id"], []) != emails[row["id"]]
        )
        if old is None:
            new_rows.append(row)
            email_owners.append(row["id"])
        elif old != wanted or email_changed:
            changed_rows.append(row)
            if email_changed:
                email_owners.append(row["id"])
    if new_rows:
        session.execute(insert(table), new_rows)
    for row in changed_rows:
        session.execute(update(table).where(table.c.id == row["id"]).values(**row))
    if email_table is not None and emails is not None and email_owners:
        owner = email_table.c[owner_column]
        for chunk in _chunks(email_owners, 500):
            session.execute(delete(email_table).where(owner.in_(chunk)))
        email_rows = [
            {
                owner_column: oid,
                "address": normalize_email(display),
                "display": display,
                "is_primary": primary,
                "position": j,
            }
            for oid in email_owners
            for j, (display, primary) in enumerate(emails[oid])
        ]
        if email_rows:
            session.execute(insert(email_table), email_rows)
    report.created[kind] = len(new_rows)
    report.updated[kind] = len(changed_rows)
    report.unchanged[kind] = len(rows) - len(new_rows) - len(changed_rows)


def _place(rows: list[dict[str, Any]], stored: dict[str, int]) -> None:
    """Set each row's export ``position``. A file that lists every stored id decides the whole
    order (its index); a partial file leaves stored rows where they are and appends new ones."""
    if stored.keys() <= {row["id"] for row in rows}:
        return
    end = max(stored.values(), default=-1) + 1
    for row in rows:
        if row["id"] in stored:
            row["position"] = stored[row["id"]]
        else:
            row["position"], end = end, end + 1


def _emails_of(
    session: Session, table: Table, owner_column: str
) -> dict[str, list[tuple[str, bool]]]:
    out: dict[str, list[tuple[str, bool]]] = {}
    owner = table.c[owner_column]
    query = select(owner, table.c.display, table.c.is_primary).order_by(owner, table.c.position)
    for oid, display, primary in session.execute(query):
        out.setdefault(oid, []).append((display, bool(primary)))
    return out


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _save_settings(session: Session, d: DirectoryIn) -> bool:
    assert d.settings is not None
    s = d.settings
    wanted = {
        "default_account_id": s.default_account,
        "default_event_manager_id": s.default_event_manager,
        "auto_assign_event_manager": s.auto_assign_event_manager,
        "virtual_assistant_user_id": s.virtual_assistant_user,
        "venue_timezone": s.venue_timezone,
    }
    row = session.get(SystemSettings, 1)
    if row is None:
        session.add(SystemSettings(id=1, **wanted))
        return True
    current = {key: getattr(row, key) for key in wanted}
    if current == wanted:
        return False
    for key, value in wanted.items():
        setattr(row, key, value)
    return True


def export_directory(session: Session) -> dict[str, Any]:
    """The whole directory in the import format; ``import(export(db))`` changes nothing."""
    out: dict[str, Any] = {}
    s = session.get(SystemSettings, 1)
    if s is not None:
        out["settings"] = {
            "default_account": s.default_account_id,
            "default_event_manager": s.default_event_manager_id,
            "auto_assign_event_manager": s.auto_assign_event_manager,
            "virtual_assistant_user": s.virtual_assistant_user_id,
        }
        if s.venue_timezone is not None:
            out["settings"]["venue_timezone"] = s.venue_timezone
    out["companies"] = [
        {"id": cid, "name": name}
        for cid, name in session.execute(
            select(Company.id, Company.name).order_by(Company.position, Company.id)
        )
    ]
    contact_emails = _emails_of(session, _table(ContactEmail), "contact_id")
    contacts = session.execute(
        select(Contact.id, Contact.name, Contact.company_id, Contact.primary_email).order_by(
            Contact.position, Contact.id
        )
    )
    out["contacts"] = [
        {
            "id": cid,
            "name": name,
            "company": company,
            "primary_email": primary,
            "alternate_emails": [
                e for e, is_primary in contact_emails.get(cid, []) if not is_primary
            ],
        }
        for cid, name, company, primary in contacts
    ]
    user_emails = _emails_of(session, _table(UserEmail), "user_id")
    users = session.execute(
        select(User.id, User.name, User.type, User.active, User.crm_account_id).order_by(
            User.position, User.id
        )
    )
    out["users"] = [
        {
            "id": uid,
            "name": name,
            "type": utype,
            "active": bool(active),
            "crm_account": crm,
            "email_accounts": [{"address": e, "primary": p} for e, p in user_emails.get(uid, [])],
        }
        for uid, name, utype, active, crm in users
    ]
    from calbridge.store.locations import export_locations

    locations = export_locations(session)
    if locations:  # a directory without rooms exports exactly as before
        out["locations"] = locations
    return out
