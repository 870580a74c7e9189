"""SPEC §2 — who is the client of an event that arrives from a calendar — one test per rule.

The rules run over an in-memory ``DirectoryLookup`` built from plain data. It returns every user
and contact that has the address (whatever its type or active flag), so the rules themselves
must do the filtering and the tie-breaking.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from calbridge.domain.assignment import (
    AccountRef,
    Assignment,
    AssignmentSettings,
    ContactMatch,
    Ref,
    UserMatch,
    assign,
)

T = TypeVar("T")

WALK_IN = AccountRef("co-walkin", "Walk-in Bookings", "company")
VA = Ref("u-va", "Calendar Assistant")
DUTY = Ref("u-duty", "Duty Manager")


@dataclass(frozen=True)
class Person:
    """A user (``accounts``: address -> is primary) or a contact (``emails``: primary first)."""

    id: str
    type: str = "named"
    active: bool = True
    crm: str | None = None
    company: str | None = None
    accounts: dict[str, bool] = field(default_factory=dict)
    emails: tuple[str, ...] = ()

    @property
    def ref(self) -> Ref:
        return Ref(self.id, self.id.upper())


@dataclass
class FakeDirectory:
    """A ``DirectoryLookup`` over plain data that records the lookups it was asked."""

    users: Sequence[Person] = ()
    contacts: Sequence[Person] = ()
    companies: Sequence[str] = ("co-acme", "co-harbour")
    reverse: bool = False
    asked: list[str] = field(default_factory=list)

    def _ordered(self, items: list[T]) -> list[T]:
        return items[::-1] if self.reverse else items

    def _account(self, account_id: str | None) -> AccountRef | None:
        if account_id is None:
            return None
        if account_id in self.companies:
            return AccountRef(account_id, account_id.upper(), "company")
        contact = next(c for c in self.contacts if c.id == account_id)
        return AccountRef(contact.id, contact.ref.name, "contact")

    def _company(self, company_id: str | None) -> Ref | None:
        return None if company_id is None else Ref(company_id, company_id.upper())

    def users_by_email(self, address: str) -> list[UserMatch]:
        self.asked.append("users")
        matches: list[UserMatch] = []
        for u in self.users:
            if address in u.accounts:
                account = self._account(u.crm)
                linked = next((c for c in self.contacts if c.id == u.crm), None)
                company = self._company(linked.company) if linked else None
                matches.append(
                    UserMatch(u.ref, u.accounts[address], account, company, u.type, u.active)
                )
        return self._ordered(matches)

    def contacts_by_email(self, address: str) -> list[ContactMatch]:
        self.asked.append("contacts")
        matches = [
            ContactMatch(c.ref, c.emails[0] == address, self._company(c.company))
            for c in self.contacts
            if address in c.emails
        ]
        return self._ordered(matches)


def settings_(auto_assign: bool = True, default_manager: Ref | None = None) -> AssignmentSettings:
    return AssignmentSettings(WALK_IN, default_manager, auto_assign, VA)


def resolve(
    directory: FakeDirectory, email: str, settings: AssignmentSettings | None = None
) -> Assignment:
    return assign(email, directory, settings or settings_())


def steps(a: Assignment) -> list[int]:
    return [s.step for s in a.trace]


ANN = Person("ct-ann", company="co-acme", emails=("ann@acme.example", "ann@events.example"))
RAJ = Person("ct-raj", emails=("raj@mail.example",))
MIA_CONTACT = Person("ct-mia", company="co-harbour", emails=("mia@harbour.example",))
MIA = Person(
    "u-mia",
    crm="ct-mia",
    accounts={"mia@harbour.example": True, "bookings@harbour.example": False},
)
TOM = Person("u-tom", type="concurrent", crm="co-harbour", accounts={"tom@harbour.example": True})


# --- step 1: which users are searched -------------------------------------------------------


def test_user_found_by_primary_account() -> None:
    a = resolve(FakeDirectory(users=[MIA], contacts=[MIA_CONTACT]), "mia@harbour.example")
    assert a.booked_by == MIA.ref
    assert "primary account" in a.trace[0].outcome


def test_user_found_by_any_of_its_accounts_not_only_the_primary() -> None:
    a = resolve(FakeDirectory(users=[MIA], contacts=[MIA_CONTACT]), "bookings@harbour.example")
    assert a.booked_by == MIA.ref
    assert a.client_contact == MIA_CONTACT.ref
    assert "non-primary account" in a.trace[0].outcome


def test_concurrent_user_is_matched_like_a_named_user() -> None:
    a = resolve(FakeDirectory(users=[TOM]), "tom@harbour.example")
    assert a.booked_by == TOM.ref


def test_inactive_user_is_never_matched() -> None:
    gone = Person("u-gone", active=False, crm="ct-raj", accounts={"raj@mail.example": True})
    a = resolve(FakeDirectory(users=[gone], contacts=[RAJ]), "raj@mail.example")
    assert a.booked_by == VA
    assert a.client_contact == RAJ.ref  # found in the contact search instead
    assert a.trace[0].outcome == "no active named/concurrent user has raj@mail.example"


def test_virtual_assistant_user_is_never_matched() -> None:
    va = Person("u-va", type="virtual_assistant", accounts={"calendar@venue.example": True})
    a = resolve(FakeDirectory(users=[va]), "calendar@venue.example")
    assert a.booked_by == VA
    assert a.client == WALK_IN
    assert not a.ambiguous


def test_inactive_and_virtual_assistant_users_do_not_make_a_match_ambiguous() -> None:
    gone = Person("u-a-gone", active=False, accounts={"tom@harbour.example": True})
    va = Person("u-a-va", type="virtual_assistant", accounts={"tom@harbour.example": True})
    a = resolve(FakeDirectory(users=[gone, va, TOM]), "tom@harbour.example")
    assert a.booked_by == TOM.ref
    assert not a.ambiguous


# --- step 2: a matched user linked to a contact ---------------------------------------------


def test_user_linked_to_contact_makes_it_the_client_contact_and_its_company_the_client() -> None:
    a = resolve(FakeDirectory(users=[MIA], contacts=[MIA_CONTACT]), "mia@harbour.example")
    assert a.client_contact == MIA_CONTACT.ref
    assert a.client == AccountRef("co-harbour", "CO-HARBOUR", "company")
    assert steps(a) == [1, 2]


def test_user_linked_to_contact_without_company_makes_the_contact_itself_the_client() -> None:
    raj_user = Person("u-raj", crm="ct-raj", accounts={"raj@venue.example": True})
    a = resolve(FakeDirectory(users=[raj_user], contacts=[RAJ]), "raj@venue.example")
    assert a.client_contact == RAJ.ref
    assert a.client == AccountRef("ct-raj", "CT-RAJ", "contact")
    assert "has no company, so it is itself the client" in a.trace[1].outcome


def test_user_linked_to_contact_stops_before_the_contact_search() -> None:
    other = Person("ct-other", emails=("mia@harbour.example",))
    directory = FakeDirectory(users=[MIA], contacts=[MIA_CONTACT, other])
    a = resolve(directory, "mia@harbour.example")
    assert directory.asked == ["users"]
    assert a.client_contact == MIA_CONTACT.ref
    assert not a.ambiguous


# --- step 3: falling through to the contact search ------------------------------------------


def test_user_linked_to_company_falls_through_to_contact_search() -> None:
    tom_contact = Person("ct-tom", company="co-acme", emails=("tom@harbour.example",))
    directory = FakeDirectory(users=[TOM], contacts=[tom_contact])
    a = resolve(directory, "tom@harbour.example")
    assert directory.asked == ["users", "contacts"]
    assert a.client_contact == tom_contact.ref
    assert a.client == AccountRef("co-acme", "CO-ACME", "company")
    assert a.booked_by == TOM.ref
    assert steps(a) == [1, 2, 3, 4]
    assert "company co-harbour" in a.trace[1].outcome


def test_user_linked_to_nothing_falls_through_to_contact_search() -> None:
    loose = Person("u-loose", accounts={"ann@events.example": False})
    a = resolve(FakeDirectory(users=[loose], contacts=[ANN]), "ann@events.example")
    assert a.client_contact == ANN.ref
    assert a.booked_by == loose.ref
    assert "no CRM account" in a.trace[1].outcome


def test_user_linked_to_company_with_no_matching_contact_gets_the_default_account() -> None:
    a = resolve(FakeDirectory(users=[TOM]), "tom@harbour.example")
    assert a.client == WALK_IN
    assert a.client_contact is None
    assert a.booked_by == TOM.ref
    assert steps(a) == [1, 2, 3, 5]


# --- steps 3-4: contacts --------------------------------------------------------------------


def test_contact_found_by_primary_email() -> None:
    a = resolve(FakeDirectory(contacts=[ANN]), "ann@acme.example")
    assert a.client_contact == ANN.ref
    assert "(primary email)" in a.trace[1].outcome


def test_contact_found_by_alternate_email() -> None:
    a = resolve(FakeDirectory(contacts=[ANN]), "ann@events.example")
    assert a.client_contact == ANN.ref
    assert a.client == AccountRef("co-acme", "CO-ACME", "company")
    assert "(alternate email)" in a.trace[1].outcome


def test_contact_without_company_is_itself_the_client() -> None:
    a = resolve(FakeDirectory(contacts=[RAJ]), "raj@mail.example")
    assert a.client == AccountRef("ct-raj", "CT-RAJ", "contact")
    assert a.client_contact == RAJ.ref


def test_no_user_and_no_contact_gives_the_default_account_and_no_contact() -> None:
    a = resolve(FakeDirectory(users=[MIA], contacts=[ANN]), "stranger@else.example")
    assert a.client == WALK_IN
    assert a.client_contact is None
    assert steps(a) == [1, 3, 5]
    assert a.trace[2].outcome == "client is the Default Account co-walkin (Walk-in Bookings)"


def test_a_user_and_a_contact_sharing_an_address_is_not_ambiguous() -> None:
    a = resolve(FakeDirectory(users=[MIA], contacts=[MIA_CONTACT]), "mia@harbour.example")
    assert not a.ambiguous


# --- Booked By and Event Manager ------------------------------------------------------------


def test_booked_by_is_the_matched_user() -> None:
    a = resolve(FakeDirectory(users=[TOM]), "tom@harbour.example")
    assert a.booked_by == TOM.ref
    assert a.booked_by_reason == "the user matched in step 1"


def test_booked_by_is_the_virtual_assistant_when_no_user_matched() -> None:
    a = resolve(FakeDirectory(contacts=[ANN]), "ann@acme.example")
    assert a.booked_by == VA


def test_event_manager_is_the_matched_user_when_auto_assign_is_on() -> None:
    a = resolve(FakeDirectory(users=[TOM]), "tom@harbour.example", settings_(True, DUTY))
    assert a.event_manager == TOM.ref


def test_event_manager_is_the_default_event_manager_when_auto_assign_is_off() -> None:
    a = resolve(FakeDirectory(users=[TOM]), "tom@harbour.example", settings_(False, DUTY))
    assert a.event_manager == DUTY
    assert a.booked_by == TOM.ref
    assert a.event_manager_reason == "auto-assign is off: the Default Event Manager"


def test_event_manager_is_the_default_event_manager_when_no_user_matched() -> None:
    a = resolve(FakeDirectory(contacts=[ANN]), "ann@acme.example", settings_(True, DUTY))
    assert a.event_manager == DUTY
    assert a.event_manager_reason == "no user matched: the Default Event Manager"


def test_event_manager_is_the_virtual_assistant_when_auto_assign_is_off_and_no_default() -> None:
    a = resolve(FakeDirectory(users=[TOM]), "tom@harbour.example", settings_(False, None))
    assert a.event_manager == VA


def test_event_manager_is_the_virtual_assistant_when_no_user_matched_and_no_default() -> None:
    a = resolve(FakeDirectory(contacts=[ANN]), "ann@acme.example", settings_(True, None))
    assert a.event_manager == VA


# --- tie-breaks and ambiguity ---------------------------------------------------------------


def test_user_whose_primary_account_it_is_beats_a_smaller_id_with_a_non_primary_account() -> None:
    a_secondary = Person("u-a", accounts={"desk@venue.example": False})
    z_primary = Person("u-z", accounts={"desk@venue.example": True})
    a = resolve(FakeDirectory(users=[a_secondary, z_primary]), "desk@venue.example")
    assert a.booked_by == z_primary.ref
    assert a.ambiguous
    assert "picked u-z (the only one whose primary address it is)" in a.trace[0].outcome


def test_users_tied_on_primary_are_decided_by_smallest_id_in_plain_string_order() -> None:
    u9 = Person("u-9", accounts={"desk@venue.example": True})
    u10 = Person("u-10", accounts={"desk@venue.example": True})
    a = resolve(FakeDirectory(users=[u9, u10]), "desk@venue.example")
    assert a.booked_by == u10.ref  # "u-10" < "u-9" as strings
    assert a.ambiguous
    assert "ambiguous: 2 users have this address; picked u-10 (smallest id)" in a.trace[0].outcome


def test_users_tied_on_non_primary_are_decided_by_smallest_id() -> None:
    b = Person("u-b", accounts={"desk@venue.example": False})
    a_ = Person("u-a", accounts={"desk@venue.example": False})
    a = resolve(FakeDirectory(users=[b, a_]), "desk@venue.example")
    assert a.booked_by == a_.ref
    assert a.ambiguous


def test_contact_whose_primary_email_it_is_beats_a_smaller_id_with_an_alternate() -> None:
    a_alt = Person("ct-a", emails=("x@acme.example", "shared@acme.example"))
    z_primary = Person("ct-z", company="co-acme", emails=("shared@acme.example",))
    a = resolve(FakeDirectory(contacts=[a_alt, z_primary]), "shared@acme.example")
    assert a.client_contact == z_primary.ref
    assert a.ambiguous
    assert "picked ct-z (the only one whose primary address it is)" in a.trace[1].outcome


def test_contacts_tied_on_primary_are_decided_by_smallest_id_in_plain_string_order() -> None:
    c9 = Person("ct-9", emails=("shared@acme.example",))
    c10 = Person("ct-10", emails=("shared@acme.example",))
    a = resolve(FakeDirectory(contacts=[c9, c10]), "shared@acme.example")
    assert a.client_contact == c10.ref
    assert a.ambiguous
    assert "ambiguous: 2 contacts have this address; picked ct-10 (smallest id)" in (
        a.trace[1].outcome
    )


def test_single_match_is_not_ambiguous() -> None:
    a = resolve(FakeDirectory(users=[TOM], contacts=[ANN]), "tom@harbour.example")
    b = resolve(FakeDirectory(users=[TOM], contacts=[ANN]), "ann@acme.example")
    assert not a.ambiguous and not b.ambiguous


def test_ambiguous_users_are_flagged_even_when_the_winner_is_linked_to_a_contact() -> None:
    other = Person("u-other", accounts={"mia@harbour.example": False})
    a = resolve(FakeDirectory(users=[other, MIA], contacts=[MIA_CONTACT]), "mia@harbour.example")
    assert a.booked_by == MIA.ref
    assert a.client_contact == MIA_CONTACT.ref
    assert a.ambiguous


# --- the trace ------------------------------------------------------------------------------


def test_trace_records_each_step_with_its_rule_and_outcome() -> None:
    tom_contact = Person("ct-tom", company="co-acme", emails=("x@t.example", "tom@harbour.example"))
    a = resolve(FakeDirectory(users=[TOM], contacts=[tom_contact]), "tom@harbour.example")
    assert [(s.step, s.outcome) for s in a.trace] == [
        (1, "found user u-tom (U-TOM) by tom@harbour.example (primary account)"),
        (2, "user is linked to company co-harbour (CO-HARBOUR), not a contact: go on"),
        (3, "found contact ct-tom (CT-TOM) by tom@harbour.example (alternate email)"),
        (4, "client contact is ct-tom (CT-TOM); client is the contact's company co-acme (CO-ACME)"),
    ]
    assert all(s.rule for s in a.trace)
    assert a.trace[0].as_dict() == {
        "step": 1,
        "rule": "Search the email accounts of active named/concurrent users",
        "outcome": a.trace[0].outcome,
    }


# --- properties over random directories -----------------------------------------------------

ADDRESSES = [f"a{i}@x.example" for i in range(4)]
USER_IDS = ["u-1", "u-10", "u-2", "u-9"]
CONTACT_IDS = ["ct-1", "ct-10", "ct-2", "ct-9"]


@st.composite
def directories(draw: st.DrawFn) -> FakeDirectory:
    contacts = [
        Person(
            cid,
            company=draw(st.sampled_from([None, "co-acme", "co-harbour"])),
            emails=tuple(draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, unique=True))),
        )
        for cid in draw(st.lists(st.sampled_from(CONTACT_IDS), unique=True))
    ]
    accounts = [None, "co-acme", *(c.id for c in contacts)]
    users = [
        Person(
            uid,
            type=draw(st.sampled_from(["named", "concurrent", "virtual_assistant"])),
            active=draw(st.booleans()),
            crm=draw(st.sampled_from(accounts)),
            accounts=draw(st.dictionaries(st.sampled_from(ADDRESSES), st.booleans())),
        )
        for uid in draw(st.lists(st.sampled_from(USER_IDS), unique=True))
    ]
    return FakeDirectory(users=users, contacts=contacts)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(directories(), st.sampled_from(ADDRESSES), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_the_order_the_lookup_returns_matches(
    directory: FakeDirectory, email: str, rnd: random.Random
) -> None:
    shuffled = FakeDirectory(
        users=rnd.sample(list(directory.users), len(directory.users)),
        contacts=rnd.sample(list(directory.contacts), len(directory.contacts)),
        reverse=True,
    )
    assert resolve(directory, email) == resolve(shuffled, email)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(directories(), st.sampled_from(ADDRESSES))
def test_ambiguous_exactly_when_several_users_or_searched_contacts_match(
    directory: FakeDirectory, email: str
) -> None:
    a = resolve(directory, email)
    users = [
        u
        for u in directory.users
        if email in u.accounts and u.active and u.type in ("named", "concurrent")
    ]
    contacts = [c for c in directory.contacts if email in c.emails]
    searched_contacts = "contacts" in directory.asked
    assert a.ambiguous == (len(users) > 1 or (searched_contacts and len(contacts) > 1))
    assert (a.booked_by == VA) == (not users)
    if users:
        best = min(users, key=lambda u: (not u.accounts[email], u.id))
        assert a.booked_by == best.ref
    if searched_contacts and contacts:
        best_contact = min(contacts, key=lambda c: (c.emails[0] != email, c.id))
        assert a.client_contact == best_contact.ref
    if a.client_contact is None:
        assert a.client == WALK_IN
