"""The directory and the Event System Settings, for the CLI, the REST API and the admin UI.

- :func:`import_directory`: the whole file is validated first (every problem with its JSON
  path, ``ValidationFailed``, nothing written), then upserted by id in the caller's
  transaction — exactly what ``calbridge directory import`` does — and recorded in the history.
- :func:`export_directory`: the same format back (an exact round trip).
- :func:`get_settings` / :func:`update_settings`: the settings with what is wrong with them;
  an update is validated like the directory file's ``settings`` (the default account must
  exist, the Virtual Assistant must be a ``virtual_assistant`` user, the default event manager
  an active user) with each problem at its JSON path in the request (``$.default_account``).
- :func:`search`: users, contacts and companies by name, id or email address (the admin UI's
  search-as-you-type and the directory page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from calbridge.errors import ValidationFailed
from calbridge.ops.history import record
from calbridge.store import directory as store_directory
from calbridge.store.directory import ImportReport, known_ids
from calbridge.store.directory_schema import DirectoryIn, SettingsIn, check_directory
from calbridge.store.lookup import settings_problems
from calbridge.store.models import Company, Contact, ContactEmail, SystemSettings, User, UserEmail

#: setting (as in the directory file) -> column of ``system_settings`` when the names differ
_COLUMNS = {
    "default_account": "default_account_id",
    "default_event_manager": "default_event_manager_id",
    "virtual_assistant_user": "virtual_assistant_user_id",
}


def _column(setting: str) -> str:
    return _COLUMNS.get(setting, setting)


#: every setting of the directory file's ``settings`` that the store keeps
SETTINGS_FIELDS = tuple(
    name for name in SettingsIn.model_fields if hasattr(SystemSettings, _column(name))
)


def import_directory(
    session: Session, text: str, *, actor: str, strict: bool = False
) -> ImportReport:
    """Validate, then upsert a directory file (JSON text); ValidationFailed writes nothing.
    ``strict``: addresses several people share are problems too (see the store's import)."""
    report = store_directory.import_directory(session, text, strict=strict)
    if report.changed:
        record(
            session,
            actor=actor,
            subject="directory",
            subject_id=None,
            action="imported",
            details=report.as_dict(),
        )
    return report


def export_directory(session: Session) -> dict[str, Any]:
    return store_directory.export_directory(session)


def get_settings(session: Session) -> dict[str, Any]:
    """The stored settings (ids; None when unset) and ``problems``: what to fix, if anything."""
    row = session.get(SystemSettings, 1)
    values: dict[str, Any] = {
        name: getattr(row, _column(name))
        if row is not None
        else (None if field.is_required() else field.default)
        for name, field in SettingsIn.model_fields.items()
        if name in SETTINGS_FIELDS
    }
    return {**values, "problems": settings_problems(session)}


def update_settings(session: Session, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Change some settings (absent keys keep their value); every problem is reported at its
    JSON path and nothing is written when there is one."""
    current = get_settings(session)
    wanted = {key: current[key] for key in SETTINGS_FIELDS} | changes
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"the settings have {len(unknown)} problem(s); nothing was changed",
            [f"$.{key}: not a setting (known: {', '.join(SETTINGS_FIELDS)})" for key in unknown],
        )
    try:
        parsed = SettingsIn.model_validate(wanted)
    except ValidationError as exc:
        problems = [f"$.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ValidationFailed(
            f"the settings have {len(problems)} problem(s); nothing was changed", problems
        ) from exc
    problems = [
        p.replace("$.settings.", "$.", 1)
        for p in check_directory(DirectoryIn(settings=parsed), known_ids(session))
    ]
    if problems:
        raise ValidationFailed(
            f"the settings have {len(problems)} problem(s); nothing was changed", problems
        )
    before = {key: current[key] for key in SETTINGS_FIELDS}
    after = {key: value for key, value in parsed.model_dump().items() if key in SETTINGS_FIELDS}
    if before != after:
        row = session.get(SystemSettings, 1)
        if row is None:
            row = SystemSettings(id=1)
            session.add(row)
        for name in SETTINGS_FIELDS:
            setattr(row, _column(name), after[name])
        session.flush()
        diff = {k: [before[k], after[k]] for k in SETTINGS_FIELDS if before[k] != after[k]}
        record(
            session,
            actor=actor,
            subject="settings",
            subject_id=None,
            action="updated",
            details={"changes": diff},
        )
    return get_settings(session)


@dataclass(frozen=True)
class Found:
    """A directory entry matching a search."""

    kind: str  # user | contact | company
    id: str
    name: str
    emails: tuple[str, ...]
    company: str | None = None  # a contact's company id
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "emails": list(self.emails),
            "company": self.company,
            "active": self.active,
        }


KINDS = ("user", "contact", "company")


def search(
    session: Session, text: str = "", *, kinds: tuple[str, ...] = KINDS, limit: int = 20
) -> list[Found]:
    """Entries whose name or id contains ``text`` or whose email address starts with it
    (case-insensitive), at most ``limit`` of each kind, by name."""
    needle = text.strip().lower()
    like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    prefix = like[1:]
    found: list[Found] = []
    if "user" in kinds:
        query = select(User).order_by(User.name, User.id).limit(limit)
        if needle:
            by_email = select(UserEmail.user_id).where(UserEmail.address.like(prefix, escape="\\"))
            query = query.where(
                or_(
                    User.name.ilike(like, escape="\\"),
                    User.id.ilike(like, escape="\\"),
                    User.id.in_(by_email),
                )
            )
        for user in session.scalars(query):
            emails = tuple(e.display for e in user.emails)
            found.append(Found("user", user.id, user.name, emails, None, user.active))
    if "contact" in kinds:
        query_c = select(Contact).order_by(Contact.name, Contact.id).limit(limit)
        if needle:
            by_email = select(ContactEmail.contact_id).where(
                ContactEmail.address.like(prefix, escape="\\")
            )
            query_c = query_c.where(
                or_(
                    Contact.name.ilike(like, escape="\\"),
                    Contact.id.ilike(like, escape="\\"),
                    Contact.id.in_(by_email),
                )
            )
        for contact in session.scalars(query_c):
            emails = tuple(e.display for e in contact.emails)
            found.append(Found("contact", contact.id, contact.name, emails, contact.company_id))
    if "company" in kinds:
        query_co = select(Company).order_by(Company.name, Company.id).limit(limit)
        if needle:
            query_co = query_co.where(
                or_(Company.name.ilike(like, escape="\\"), Company.id.ilike(like, escape="\\"))
            )
        found.extend(Found("company", c.id, c.name, ()) for c in session.scalars(query_co))
    return found
