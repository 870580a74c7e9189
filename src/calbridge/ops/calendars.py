"""Unlinking a calendar, the same for the CLI, the REST API and the admin UI.

:func:`unlink_calendar` first stops the calendar's push channel (Google watch channel or
Microsoft Graph subscription) so that Google and Microsoft stop calling the service, then
removes the calendar (:func:`calbridge.sync.calendars.remove_calendar`: its bookings stay,
nothing is deleted on the remote calendar, its links are kept aside as former links so that
linking it again adopts both sides instead of duplicating them), and records the removal in
the history with the ``actor``. A channel that cannot be stopped (credentials already revoked,
provider down) does not block the removal: it ends at its own expiry, its notifications are
refused meanwhile, and the result says so.

The calendar is paused first, in its own transaction: an Exchange stream that sees its
subscription end (it was just unsubscribed) makes a new one only for a calendar still wanted
— existing, pulling and not paused (``providers/ews/notify.py``) — so none is re-created in the
moment between the unsubscribe and the removal. Should stopping the channel fail unexpectedly,
the calendar is left as paused as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from calbridge.ops.history import record
from calbridge.service.channels import stop_push
from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import find_calendar, remove_calendar


@dataclass(frozen=True)
class Unlinked:
    name: str
    calendar_id: int
    links_kept: int
    channel_note: str | None  # why the push channel could not be stopped, if it could not


def unlink_calendar(store: Store, box: SecretBox, name: str, *, actor: str) -> Unlinked:
    """Stop the calendar's push channel, remove the calendar, record it (see the module)."""
    with store.session() as session:
        calendar = find_calendar(session, name)
        calendar_id, was_paused = calendar.id, calendar.paused
        calendar.paused = True  # on its way out: no push stream subscribes it again
    try:
        note = stop_push(store, box, name)
    except BaseException:
        with store.session() as session:
            find_calendar(session, name).paused = was_paused
        raise
    with store.session() as session:
        kept = remove_calendar(session, name)
        record(
            session,
            actor=actor,
            subject="calendar",
            subject_id=calendar_id,
            action="removed",
            details={"name": name, "links": kept, **({"channel": note} if note else {})},
        )
    return Unlinked(name, calendar_id, kept, note)
