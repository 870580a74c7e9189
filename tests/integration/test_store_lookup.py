"""The store's lookup runs SPEC §2 end to end through the real queries, on both databases, and
resolving one booker costs the same number of statements whatever the directory's size."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy.orm import Session

from calbridge.domain.assignment import Assignment, Ref
from calbridge.errors import BadEmail, ConfigError
from calbridge.store import lookup as lookup_module
from calbridge.store.db import Store
from calbridge.store.directory import import_directory
from calbridge.store.events import resolve_booker
from calbridge.store.lookup import StoreLookup
from calbridge.store.models import Contact, ContactEmail

SETTINGS = {
    "default_account": "co-walkin",
    "default_event_manager": None,
    "auto_assign_event_manager": True,
    "virtual_assistant_user": "u-va",
}
VA_USER = {
    "id": "u-va", "name": "Calendar Assistant", "type": "virtual_assistant", "active": True,
    "crm_account": None, "email_accounts": [{"address": "calendar@venue.example", "primary": True}],
}  # fmt: skip


def directory(
    contacts: Sequence[dict[str, Any]] = (),
    users: Sequence[dict[str, Any]] = (),
    companies: tuple[str, ...] = ("co-walkin", "co-acme", "co-harbour"),
) -> str:
    return json.dumps(
        {
            "settings": SETTINGS,
            "companies": [{"id": c, "name": c.removeprefix("co-").title()} for c in companies],
            "contacts": list(contacts),
            "users": [VA_USER, *users],
        }
    )


def contact(cid: str, primary: str, *alternates: str, company: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "name": cid.removeprefix("ct-").title(),
        "company": company,
        "primary_email": primary,
        "alternate_emails": list(alternates),
    }


def user(
    uid: str,
    *accounts: tuple[str, bool],
    crm: str | None = None,
    active: bool = True,
    type_: str = "named",
) -> dict[str, Any]:
    return {
        "id": uid,
        "name": uid.removeprefix("u-").title(),
        "type": type_,
        "active": active,
        "crm_account": crm,
        "email_accounts": [{"address": a, "primary": p} for a, p in accounts],
    }


def load(store: Store, text: str) -> None:
    with store.session() as s:
        import_directory(s, text)


def resolve(store: Store, email: str) -> Assignment:
    with store.session() as s:
        return resolve_booker(s, email)


def test_user_is_found_by_a_secondary_account(store: Store) -> None:
    load(
        store,
        directory(
            contacts=[contact("ct-mia", "mia@harbour.example", company="co-harbour")],
            users=[
                user(
                    "u-mia",
                    ("mia@harbour.example", True),
                    ("bookings@harbour.example", False),
                    crm="ct-mia",
                )
            ],
        ),
    )
    a = resolve(store, "bookings@harbour.example")
    assert a.booked_by.id == "u-mia"
    assert (a.client_contact and a.client_contact.id) == "ct-mia"
    assert (a.client.id, a.client.kind, a.client.name) == ("co-harbour", "company", "Harbour")
    assert [s.step for s in a.trace] == [1, 2]


def test_user_linked_to_contact_without_company_makes_the_contact_the_client(store: Store) -> None:
    load(
        store,
        directory(
            contacts=[contact("ct-raj", "raj@mail.example")],
            users=[user("u-raj", ("raj@venue.example", True), crm="ct-raj")],
        ),
    )
    a = resolve(store, "raj@venue.example")
    assert (a.client.id, a.client.kind) == ("ct-raj", "contact")


def test_inactive_and_virtual_assistant_users_are_ignored_by_the_query(store: Store) -> None:
    load(
        store,
        directory(
            contacts=[contact("ct-ann", "ann@acme.example", company="co-acme")],
            users=[user("u-gone", ("ann@acme.example", True), active=False)],
        ),
    )
    with store.session() as s:
        lookup = StoreLookup(s)
        assert lookup.users_by_email("ann@acme.example") == []
        assert lookup.users_by_email("calendar@venue.example") == []
    a = resolve(store, "ann@acme.example")
    assert a.booked_by.id == "u-va"
    assert (a.client_contact and a.client_contact.id) == "ct-ann"
    assert resolve(store, "calendar@venue.example").client.id == "co-walkin"


def test_user_linked_to_company_falls_through_to_the_contact_query(store: Store) -> None:
    load(
        store,
        directory(
            contacts=[contact("ct-tom", "t@x.example", "tom@harbour.example", company="co-acme")],
            users=[user("u-tom", ("tom@harbour.example", True), crm="co-harbour")],
        ),
    )
    a = resolve(store, "tom@harbour.example")
    assert a.booked_by.id == "u-tom"
    assert (a.client.id, a.client_contact and a.client_contact.id) == ("co-acme", "ct-tom")
    assert [s.step for s in a.trace] == [1, 2, 3, 4]


def test_contact_is_found_by_an_alternate_email(store: Store) -> None:
    load(
        store,
        directory(
            contacts=[
                contact("ct-ann", "ann.lee@acme.example", "ann@events.example", company="co-acme")
            ]
        ),
    )
    with store.session() as s:
        [match] = StoreLookup(s).contacts_by_email("ann@events.example")
    assert (match.contact.id, match.primary, match.company and match.company.id) == (
        "ct-ann",
        False,
        "co-acme",
    )
    assert resolve(store, "ann@events.example").client.id == "co-acme"


def test_addresses_compare_trimmed_and_case_insensitively(store: Store) -> None:
    load(
        store,
        directory(
            contacts=[contact("ct-ann", "Ann.Lee@ACME.example", company="co-acme")],
            users=[user("u-tom", ("Tom@Harbour.Example", True))],
        ),
    )
    assert resolve(store, "  ann.lee@acme.EXAMPLE ").client_contact == Ref("ct-ann", "Ann")
    assert resolve(store, "mailto:TOM@harbour.example").booked_by.id == "u-tom"


def test_two_contacts_sharing_an_address_are_ambiguous_and_the_primary_then_smallest_id_wins(
    store: Store,
) -> None:
    load(
        store,
        directory(
            contacts=[
                contact("ct-9", "shared@acme.example"),
                contact("ct-10", "shared@acme.example"),
                contact("ct-1", "one@acme.example", "shared@acme.example"),
            ]
        ),
    )
    a = resolve(store, "shared@acme.example")
    assert a.ambiguous
    assert a.client_contact is not None and a.client_contact.id == "ct-10"
    assert "ambiguous: 3 contacts have this address" in a.trace[1].outcome


def test_an_alternate_removed_by_a_later_import_no_longer_matches(store: Store) -> None:
    load(store, directory(contacts=[contact("ct-ann", "ann@acme.example", "old@acme.example")]))
    assert resolve(store, "old@acme.example").client.id == "ct-ann"
    load(store, directory(contacts=[contact("ct-ann", "ann@acme.example")]))
    assert resolve(store, "old@acme.example").client.id == "co-walkin"


def test_booker_address_with_a_nul_character_is_refused_before_the_query(store: Store) -> None:
    load(store, directory())
    with pytest.raises(BadEmail):
        resolve(store, "ann\x00@acme.example")


def test_lookup_sees_changes_pending_in_the_same_session(store: Store) -> None:
    load(store, directory())
    with store.session() as s:
        s.add(Contact(id="ct-new", name="New", company_id="co-acme", primary_email="n@x.example"))
        s.add(ContactEmail(contact_id="ct-new", address="n@x.example", display="n@x.example"))
        assert resolve_booker(s, "n@x.example").client.id == "co-acme"


def test_resolving_without_settings_is_a_config_error_saying_what_to_fix(store: Store) -> None:
    with pytest.raises(ConfigError, match="calbridge directory import"):
        resolve(store, "ann@acme.example")


# --- a constant number of queries -----------------------------------------------------------


def generated(contacts: int) -> str:
    """``contacts`` contacts with two addresses each; every tenth is also a user."""
    people = [
        contact(f"ct-{i}", f"c{i}@crm.example", f"c{i}@alt.example", company="co-acme")
        for i in range(contacts)
    ]
    users = [
        user(f"u-{i}", (f"u{i}@venue.example", True), (f"c{i}@crm.example", False), crm=f"ct-{i}")
        for i in range(0, contacts, 10)
    ]
    return directory(contacts=people, users=users)


@contextmanager
def counted(session: Session) -> Iterator[list[str]]:
    """Every statement run on the session's DBAPI connection.

    Counted at the DBAPI level, not with SQLAlchemy's ``before_cursor_execute`` event: the two
    lookups run on the raw cursor (see ``store.lookup``) and would not be seen there.
    """
    statements: list[str] = []
    dbapi = session.connection().connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection):
        dbapi.set_trace_callback(statements.append)
        try:
            yield statements
        finally:
            dbapi.set_trace_callback(None)
        return

    class CountingCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            statements.append(str(query))
            return super().execute(query, params, **kwargs)

    assert isinstance(dbapi, psycopg.Connection)
    previous = dbapi.cursor_factory
    dbapi.cursor_factory = CountingCursor
    try:
        yield statements
    finally:
        dbapi.cursor_factory = previous


def statements_per_resolution(store: Store, size: int) -> dict[str, int]:
    load(store, generated(size))
    last = size - 1 if (size - 1) % 10 else size - 2
    addresses = {
        "user hit": "u0@venue.example",
        "user linked to contact (last)": f"c{size - 10}@crm.example",
        "contact by alternate (last)": f"c{last}@alt.example",
        "miss": "nobody@else.example",
    }
    counts: dict[str, int] = {}
    for kind, address in addresses.items():
        with store.session() as s, counted(s) as statements:
            resolve_booker(s, address)
        counts[kind] = len(statements)
    return counts


def test_resolving_one_booker_costs_the_same_number_of_queries_for_10_and_2000_contacts(
    store: Store,
) -> None:
    small = statements_per_resolution(store, 10)
    large = statements_per_resolution(store, 2000)  # an upsert of a superset of the 10
    assert small == large
    assert max(small.values()) <= 12


def test_prefetched_lookups_answer_exactly_as_one_address_queries_do_with_two_queries_a_chunk(
    store: Store,
) -> None:
    """``resolve --batch`` prefetches its addresses a chunk at a time: the answers must be
    the very rows the one-address queries give (several matches, users linked to contacts,
    alternates, misses), and the lookups after the prefetch must not touch the database."""
    text = json.loads(generated(60))
    text["contacts"].append(contact("ct-twin", "twin@crm.example", "c5@alt.example"))
    load(store, json.dumps(text))
    addresses = [
        *(f"c{i}@crm.example" for i in range(0, 60, 7)),
        *(f"c{i}@alt.example" for i in range(0, 60, 5)),
        *(f"u{i}@venue.example" for i in range(0, 60, 10)),
        "nobody@else.example",
        "c5@alt.example",  # two contacts share it
    ]
    with store.session() as s:
        one_by_one = StoreLookup(s)
        expected = {
            a: (one_by_one.users_by_email(a), one_by_one.contacts_by_email(a)) for a in addresses
        }
    assert any(len(contacts) == 2 for _, contacts in expected.values())
    assert any(users for users, _ in expected.values())
    with store.session() as s:
        batch = StoreLookup(s)
        with counted(s) as prefetching:
            batch.prefetch(addresses * 2)  # duplicates are asked once
        with counted(s) as after:
            got = {a: (batch.users_by_email(a), batch.contacts_by_email(a)) for a in addresses}
    assert sorted_matches(got) == sorted_matches(expected)
    assert len([q for q in prefetching if q.lstrip().upper().startswith("SELECT")]) == 2
    assert after == []


def sorted_matches(found: dict[str, Any]) -> dict[str, Any]:
    """Match lists in a fixed order (neither query orders its rows; the rules pick by id)."""
    return {a: tuple(sorted(matches, key=repr) for matches in pair) for a, pair in found.items()}


# --- the written-out SQL is the statements' -------------------------------------------------


def as_stored(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row with booleans as the integers SQLite's cursor gives (PostgreSQL gives bools)."""
    return tuple(int(v) if isinstance(v, bool) else v for v in row)


@pytest.mark.parametrize("paramstyle", ["native", "other"])
def test_the_written_lookups_give_the_rows_of_the_sqlalchemy_statements(
    store: Store, paramstyle: str
) -> None:
    """The one-address lookups run SQL written out per dialect (``_prepared``), not compiled
    from ``_statements()``; on a directory with every kind of match — users linked to a
    contact with and without a company, to a company, inactive users, the Virtual Assistant,
    contacts without a company, an address two contacts share — both give the same rows for
    every address, with the driver's own parameter style and its other one."""
    text = json.loads(
        directory(
            contacts=[
                contact("ct-mia", "mia@harbour.example", company="co-harbour"),
                contact("ct-solo", "solo@free.example", "twin@shared.example"),
                contact("ct-twin", "twin@shared.example", company="co-acme"),
            ],
            users=[
                user("u-mia", ("mia@harbour.example", True), ("mia@venue.example", False),
                     crm="ct-mia"),
                user("u-solo", ("solo@venue.example", True), crm="ct-solo"),
                user("u-acme", ("desk@acme.example", True), crm="co-acme"),
                user("u-gone", ("gone@venue.example", True), active=False),
                user("u-con", ("con@venue.example", True), type_="concurrent"),
            ],
        )
    )  # fmt: skip
    load(store, json.dumps(text))
    addresses = [
        "mia@harbour.example", "mia@venue.example", "solo@venue.example", "solo@free.example",
        "twin@shared.example", "desk@acme.example", "gone@venue.example", "con@venue.example",
        "calendar@venue.example", "nobody@else.example",
    ]  # fmt: skip
    with store.session() as s:
        dialect = s.get_bind().dialect
        if paramstyle == "other":  # SQLite's driver also takes names, psycopg positions
            other = {"qmark": "named", "pyformat": "format"}[dialect.paramstyle]
            dialect = type(dialect)(paramstyle=other)
        statements = lookup_module._statements()
        found = {"users": 0, "contacts": 0}
        users, contacts = lookup_module._prepared(dialect)
        written_out = {"users": users, "contacts": contacts}
        for address in addresses:
            for kind, written in written_out.items():
                with closing(s.connection().connection.cursor()) as cursor:
                    cursor.execute(written.sql, written.params(address))
                    rows = sorted(as_stored(row) for row in cursor.fetchall())
                compiled = s.execute(statements[kind], {"address": address}).all()
                assert rows == sorted(as_stored(row) for row in compiled), (kind, address)
                found[kind] += len(rows)
    assert found == {"users": 5, "contacts": 4}  # every kind of row was compared


def test_a_driver_passing_parameters_in_another_style_is_a_config_error() -> None:
    """The written-out lookups know the four styles SQLite's and psycopg's drivers take; a
    driver with another (``numeric``) gets a message naming the databases calbridge supports,
    not a KeyError in the middle of a sync."""
    from sqlalchemy.dialects import sqlite

    with pytest.raises(ConfigError, match=r"'numeric' style.*SQLite or PostgreSQL"):
        lookup_module._prepared(sqlite.dialect(paramstyle="numeric"))
