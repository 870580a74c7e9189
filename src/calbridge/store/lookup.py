"""The store's side of the assignment rules: indexed email lookups and the system settings.

``users_by_email`` and ``contacts_by_email`` are one indexed query each, whatever the size of
the directory; the rules in ``domain.assignment`` decide.
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from calbridge.domain.assignment import (
    AccountRef,
    AssignmentSettings,
    ContactMatch,
    Ref,
    UserMatch,
)
from calbridge.errors import ConfigError
from calbridge.store.models import Company, Contact, ContactEmail, SystemSettings, User, UserEmail

ASSIGNABLE_TYPES = ("named", "concurrent")

_crm_contact = aliased(Contact)
_crm_company = aliased(Company)
_crm_contact_company = aliased(Company)

_USERS_BY_EMAIL = (
    select(
        User.id,
        User.name,
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
    .where(User.active.is_(True), User.type.in_(ASSIGNABLE_TYPES))
)

_CONTACTS_BY_EMAIL = (
    select(Contact.id, Contact.name, ContactEmail.is_primary, Company.id, Company.name)
    .join(ContactEmail, ContactEmail.contact_id == Contact.id)
    .outerjoin(Company, Company.id == Contact.company_id)
)


class StoreLookup:
    """``DirectoryLookup`` over a session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def users_by_email(self, address: str) -> list[UserMatch]:
        rows = self.session.execute(_USERS_BY_EMAIL.where(UserEmail.address == address))
        out = []
        for uid, uname, primary, kind, crm_id, contact_name, company_name, cc_id, cc_name in rows:
            account: AccountRef | None = None
            company: Ref | None = None
            if kind == "contact" and contact_name is not None:
                account = AccountRef(crm_id, contact_name, "contact")
                company = Ref(cc_id, cc_name) if cc_id is not None else None
            elif kind == "company" and company_name is not None:
                account = AccountRef(crm_id, company_name, "company")
            out.append(UserMatch(Ref(uid, uname), bool(primary), account, company))
        return out

    def contacts_by_email(self, address: str) -> list[ContactMatch]:
        rows = self.session.execute(_CONTACTS_BY_EMAIL.where(ContactEmail.address == address))
        return [
            ContactMatch(
                Ref(cid, cname),
                bool(primary),
                Ref(co_id, co_name) if co_id is not None else None,
            )
            for cid, cname, primary, co_id, co_name in rows
        ]


def account_ref(session: Session, account_id: str) -> AccountRef | None:
    company = session.get(Company, account_id)
    if company is not None:
        return AccountRef(company.id, company.name, "company")
    contact = session.get(Contact, account_id)
    if contact is not None:
        return AccountRef(contact.id, contact.name, "contact")
    return None


def user_ref(session: Session, user_id: str | None) -> Ref | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return Ref(user.id, user.name) if user is not None else None


def settings_problems(session: Session) -> list[str]:
    """What is wrong with the stored Event System Settings, as things an admin can fix."""
    fix = 'fix it in the directory file\'s "settings" and run `calbridge directory import`'
    row = session.get(SystemSettings, 1)
    if row is None:
        return [f"no Event System Settings are stored; {fix}"]
    problems = []
    if row.default_account_id is None or account_ref(session, row.default_account_id) is None:
        problems.append(f"the Default Account '{row.default_account_id}' does not exist; {fix}")
    va = session.get(User, row.virtual_assistant_user_id) if row.virtual_assistant_user_id else None
    if va is None:
        problems.append(
            f"the Virtual Assistant user '{row.virtual_assistant_user_id}' does not exist; {fix}"
        )
    elif va.type != "virtual_assistant":
        problems.append(f"user '{va.id}' is the Virtual Assistant but of type '{va.type}'; {fix}")
    if row.default_event_manager_id is not None:
        manager = session.get(User, row.default_event_manager_id)
        if manager is None or not manager.active:
            problems.append(
                f"the Default Event Manager '{row.default_event_manager_id}' is not an active "
                f"user; {fix}"
            )
    return problems


def load_assignment_settings(session: Session) -> AssignmentSettings:
    """The settings the rules need; ConfigError (listing what to fix) when they are unusable."""
    problems = settings_problems(session)
    if problems:
        raise ConfigError("the booking system is not configured: " + "; ".join(problems))
    row = session.get(SystemSettings, 1)
    assert row is not None and row.default_account_id is not None
    default_account = account_ref(session, row.default_account_id)
    va = user_ref(session, row.virtual_assistant_user_id)
    assert default_account is not None and va is not None
    return AssignmentSettings(
        default_account=default_account,
        default_event_manager=user_ref(session, row.default_event_manager_id),
        auto_assign_event_manager=row.auto_assign_event_manager,
        virtual_assistant=va,
    )
