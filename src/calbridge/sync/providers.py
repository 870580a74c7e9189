"""Turning a stored calendar into a provider, through the registry
(:mod:`calbridge.providers.registry`): this module knows no provider kind by name.

Given the ``store``, a provider whose kind has ``open_keeping`` may keep state for the next
process in the calendar's sealed secret: Microsoft 365 keeps MSAL's token and discovery caches
there, so a no-change sync run from the CLI makes its delta request and nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import CalbridgeError, ConfigError, credentials_hint
from calbridge.providers.registry import kind_of
from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox

log = logging.getLogger(__name__)


def open_provider(
    calendar: Calendar, box: SecretBox, store: Store | None = None, *, adding: bool = False
) -> CalendarProvider:
    """The provider for ``calendar``. ``adding``: the calendar is being linked, so a refused
    credential is fixed by running ``calendars add`` again (otherwise ``calendars update``).
    ``store``: where the provider may keep state for the next process (see above)."""
    try:
        kind = kind_of(calendar.kind)
    except ConfigError as exc:
        raise ConfigError(f"calendar '{calendar.name}': {exc}") from None
    settings = kind.parse(calendar.name, calendar.settings)
    secret: dict[str, Any] = (
        box.open(calendar.secret, f"calendar '{calendar.name}'", credentials_fix(calendar))
        if calendar.secret
        else {}
    )
    if store is not None and kind.open_keeping is not None:
        calendar_id = calendar.id

        def keep(key: str, value: Any) -> None:
            keep_in_secret(store, box, calendar_id, key, value)

        return kind.open_keeping(calendar.name, settings, secret, adding, keep)
    return kind.open(calendar.name, settings, secret, adding)


def credentials_fix(calendar: Calendar) -> str:
    """The command that gives a stored calendar its credentials again."""
    try:
        options = kind_of(calendar.kind).credentials
    except ConfigError:
        options = "with its credential options"
    return credentials_hint(calendar.name, options)


def keep_in_secret(store: Store, box: SecretBox, calendar_id: int, key: str, value: Any) -> None:
    """Store ``value`` under ``key`` in the calendar's sealed secret. A cache: when it cannot
    be written (the calendar was removed, the database is busy), the next run asks again."""
    try:
        with store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is None or not calendar.secret:
                return
            secret = box.open(calendar.secret, f"calendar '{calendar.name}'")
            secret[key] = value
            calendar.secret = box.seal(secret)
    except (SQLAlchemyError, CalbridgeError) as exc:
        log.warning("could not keep %s for calendar %s: %s", key, calendar_id, exc)
