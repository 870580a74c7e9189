"""Who is the client of an event that arrives from a calendar, as a pure function; the rules
are written out in ``docs/assignment.md``.

:func:`assign` walks the five steps over a :class:`DirectoryLookup` (the store implements it
with indexed queries) and returns an :class:`Assignment` carrying a trace of every step, so an
admin can always answer "why is Acme the client of this event?".

Tie-breaks: among several matching users (or contacts), one whose *primary* address is
the booker's address wins over one where it is a secondary address; then the smallest id in plain
string order. Whenever more than one user (or contact) matched, the result is flagged
``ambiguous`` even if the primary flag decided, because an admin should look at a directory
where one address belongs to two people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

AccountKind = Literal["company", "contact"]

#: Step 1 searches only users of these types, and only active ones; the ``virtual_assistant``
#: user stands for the sync itself and is never "the person who booked".
ASSIGNABLE_USER_TYPES = ("named", "concurrent")


@dataclass(frozen=True)
class Ref:
    """Something with an id and a display name (a user, a contact, a company)."""

    id: str
    name: str


@dataclass(frozen=True)
class AccountRef:
    """A CRM account: a company or a contact."""

    id: str
    name: str
    kind: AccountKind


@dataclass(frozen=True)
class UserMatch:
    """A user one of whose email accounts is the booker's address.

    ``type`` and ``active`` are carried so that the rule "active named/concurrent users only"
    is applied here, whatever the lookup returns (the store also filters in SQL).
    """

    user: Ref
    primary: bool
    crm_account: AccountRef | None
    crm_contact_company: Ref | None = None  # the company of crm_account when it is a contact
    type: str = "named"
    active: bool = True

    @property
    def assignable(self) -> bool:
        return self.active and self.type in ASSIGNABLE_USER_TYPES


@dataclass(frozen=True)
class ContactMatch:
    """A CRM contact whose primary or alternate email is the booker's address."""

    contact: Ref
    primary: bool
    company: Ref | None


@dataclass(frozen=True)
class AssignmentSettings:
    """The event system settings the rules need."""

    default_account: AccountRef
    default_event_manager: Ref | None
    auto_assign_event_manager: bool
    virtual_assistant: Ref


class DirectoryLookup(Protocol):
    """What the rules need from the directory; each call is a constant number of queries."""

    def users_by_email(self, address: str) -> Sequence[UserMatch]: ...

    def contacts_by_email(self, address: str) -> Sequence[ContactMatch]: ...


@dataclass(frozen=True)
class TraceStep:
    step: int
    rule: str
    outcome: str

    def as_dict(self) -> dict[str, object]:
        return {"step": self.step, "rule": self.rule, "outcome": self.outcome}


@dataclass(frozen=True)
class Assignment:
    """The result of the rules: client, contact, booked-by and event manager, with reasons."""

    email: str
    client: AccountRef
    client_contact: Ref | None
    booked_by: Ref
    event_manager: Ref
    ambiguous: bool
    trace: tuple[TraceStep, ...]
    booked_by_reason: str = ""
    event_manager_reason: str = ""
    notes: tuple[str, ...] = field(default=())


RULES = {
    1: "Search the email accounts of active named/concurrent users",
    2: "A matched user linked to a CRM contact: that contact is the client contact",
    3: "Otherwise search CRM contacts by primary and alternate email",
    4: "A matched contact is the client contact; its company is the client",
    5: "Otherwise the client is the Default Account",
}


def _describe(ref: Ref | AccountRef) -> str:
    return f"{ref.id} ({ref.name})"


def _which(primary: bool) -> str:
    return "primary" if primary else "non-primary"


def pick_user(matches: Sequence[UserMatch]) -> tuple[UserMatch | None, bool]:
    """The winning user by the tie-break, and whether several users matched."""
    if not matches:
        return None, False
    ranked = sorted(matches, key=lambda m: (not m.primary, m.user.id))
    return ranked[0], len({m.user.id for m in matches}) > 1


def pick_contact(matches: Sequence[ContactMatch]) -> tuple[ContactMatch | None, bool]:
    """The winning contact by the tie-break, and whether several contacts matched."""
    if not matches:
        return None, False
    ranked = sorted(matches, key=lambda m: (not m.primary, m.contact.id))
    return ranked[0], len({m.contact.id for m in matches}) > 1


def _tie_note(kind: str, primary_by_id: dict[str, bool], winner: str) -> str:
    """Why ``winner`` won: the primary flag only when no other match had it as primary too."""
    by_primary = primary_by_id[winner] and sum(primary_by_id.values()) == 1
    return (
        f"ambiguous: {len(primary_by_id)} {kind}s have this address; picked {winner} "
        f"({'the only one whose primary address it is' if by_primary else 'smallest id'})"
    )


def _client_from_contact(contact: Ref, company: Ref | None) -> tuple[AccountRef, str]:
    if company is None:
        return (
            AccountRef(contact.id, contact.name, "contact"),
            f"contact {_describe(contact)} has no company, so it is itself the client",
        )
    return (
        AccountRef(company.id, company.name, "company"),
        f"client is the contact's company {_describe(company)}",
    )


def assign(email: str, lookup: DirectoryLookup, settings: AssignmentSettings) -> Assignment:
    """Apply SPEC §2 to a *normalized* booker address (see ``domain.email.normalize_email``)."""
    trace: list[TraceStep] = []
    ambiguous = False
    user_matches = [m for m in lookup.users_by_email(email) if m.assignable]
    user, several_users = pick_user(user_matches)
    if user is None:
        trace.append(TraceStep(1, RULES[1], f"no active named/concurrent user has {email}"))
    else:
        outcome = f"found user {_describe(user.user)} by {email} ({_which(user.primary)} account)"
        if several_users:
            ambiguous = True
            primaries = {m.user.id: m.primary for m in user_matches}
            outcome += "; " + _tie_note("user", primaries, user.user.id)
        trace.append(TraceStep(1, RULES[1], outcome))

    client: AccountRef | None = None
    contact: Ref | None = None
    if user is not None and user.crm_account is not None and user.crm_account.kind == "contact":
        contact = Ref(user.crm_account.id, user.crm_account.name)
        client, why = _client_from_contact(contact, user.crm_contact_company)
        trace.append(
            TraceStep(2, RULES[2], f"user is linked to contact {_describe(contact)}; {why}")
        )
    else:
        if user is not None:
            linked = (
                f"company {_describe(user.crm_account)}" if user.crm_account else "no CRM account"
            )
            trace.append(
                TraceStep(2, RULES[2], f"user is linked to {linked}, not a contact: go on")
            )
        contact_matches = lookup.contacts_by_email(email)
        found, several_contacts = pick_contact(contact_matches)
        if found is None:
            trace.append(TraceStep(3, RULES[3], f"no contact has {email}"))
            client = settings.default_account
            trace.append(
                TraceStep(5, RULES[5], f"client is the Default Account {_describe(client)}")
            )
        else:
            outcome = (
                f"found contact {_describe(found.contact)} by {email} "
                f"({'primary' if found.primary else 'alternate'} email)"
            )
            if several_contacts:
                ambiguous = True
                primaries = {m.contact.id: m.primary for m in contact_matches}
                outcome += "; " + _tie_note("contact", primaries, found.contact.id)
            trace.append(TraceStep(3, RULES[3], outcome))
            contact = found.contact
            client, why = _client_from_contact(found.contact, found.company)
            trace.append(TraceStep(4, RULES[4], f"client contact is {_describe(contact)}; {why}"))

    booked_by, booked_why = _booked_by(user, settings)
    manager, manager_why = _event_manager(user, settings)
    return Assignment(
        email=email,
        client=client,
        client_contact=contact,
        booked_by=booked_by,
        event_manager=manager,
        ambiguous=ambiguous,
        trace=tuple(trace),
        booked_by_reason=booked_why,
        event_manager_reason=manager_why,
    )


def _booked_by(user: UserMatch | None, settings: AssignmentSettings) -> tuple[Ref, str]:
    if user is not None:
        return user.user, "the user matched in step 1"
    return settings.virtual_assistant, "no user matched: the Virtual Assistant user"


def _event_manager(user: UserMatch | None, settings: AssignmentSettings) -> tuple[Ref, str]:
    if user is not None and settings.auto_assign_event_manager:
        return user.user, "auto-assign is on: the user matched in step 1"
    reason = "auto-assign is off" if user is not None else "no user matched"
    if settings.default_event_manager is not None:
        return settings.default_event_manager, f"{reason}: the Default Event Manager"
    return (
        settings.virtual_assistant,
        f"{reason} and no Default Event Manager: the Virtual Assistant",
    )
