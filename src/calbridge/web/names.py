"""Display names for the ids a page shows (clients, contacts, users), fetched in one query per
kind for a whole page of bookings rather than one per row."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.store.models import Company, Contact, Event, User


class Names:
    def __init__(self, session: Session, events: Iterable[Event]) -> None:
        events = list(events)
        accounts = {e.client_id for e in events if e.client_id}
        accounts |= {e.client_contact_id for e in events if e.client_contact_id}
        users = {e.booked_by_id for e in events if e.booked_by_id}
        users |= {e.event_manager_id for e in events if e.event_manager_id}
        self._accounts: dict[str, str] = {}
        self._users: dict[str, str] = {}
        if accounts:
            for model in (Company, Contact):
                rows = session.execute(select(model.id, model.name).where(model.id.in_(accounts)))
                self._accounts.update({i: n for i, n in rows})
        if users:
            rows = session.execute(select(User.id, User.name).where(User.id.in_(users)))
            self._users.update({i: n for i, n in rows})

    def account(self, account_id: str | None) -> str:
        if account_id is None:
            return "—"
        return self._accounts.get(account_id, account_id)

    def user(self, user_id: str | None) -> str:
        if user_id is None:
            return "—"
        return self._users.get(user_id, user_id)
