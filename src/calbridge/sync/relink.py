"""Which remote calendar a link points at, and re-linking without duplicates.

A remote calendar has one *identity* whatever name it is linked under, given by its kind's
``identity`` in :mod:`calbridge.providers.registry`: e.g. the normalized CalDAV collection URL
(:func:`normalize_url`), the Google API root + calendar id, or the Graph API root + mailbox +
calendar id. The same identity may be linked once (:func:`ensure_not_linked`). When a calendar is
removed, its links are kept as ``former_links`` under that identity
(:func:`keep_former_links`); linking the same remote calendar again restores them
(:func:`adopt_former_links`), so objects we wrote (which carry our key) and objects we imported
map back to their bookings and nothing is created twice on either side. The next sync after
a re-link is a full one (no token): whatever changed in between is merged as usual.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from calbridge.errors import ConfigError
from calbridge.providers.registry import KINDS, kind_of
from calbridge.store.models import Calendar, FormerLink, Link, LinkState

_LINK_COLUMNS = tuple(LinkState.__annotations__)  # what a former link keeps


def normalize_url(url: str) -> str:
    """A CalDAV collection URL as one string per collection: scheme and host lower-case, no
    user info, no default port, percent-encoding normalized, one trailing slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = quote(unquote(parts.path or "/"), safe="/:@!$&'()*+,;=~-._")
    while "//" in path:
        path = path.replace("//", "/")
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def remote_identity(kind: str, settings: dict[str, Any]) -> str:
    """The one string naming the remote calendar ``settings`` point at (the kind's
    ``identity`` in :mod:`calbridge.providers.registry`)."""
    if kind not in KINDS:
        return f"{kind} {sorted(settings.items())}"
    entry = kind_of(kind)
    try:
        parsed = entry.settings.model_validate(settings)
    except ValidationError:
        return f"{kind} {sorted(settings.items())}"  # unreadable settings name no calendar
    return entry.identity(parsed)


def describe(kind: str, settings: dict[str, Any]) -> str:
    """The remote calendar as a person knows it, for messages."""
    if kind not in KINDS:
        return f"the {kind} calendar {sorted(settings.items())}"
    entry = kind_of(kind)
    try:
        return entry.describe(entry.settings.model_validate(settings))
    except ValidationError:
        return f"the {entry.label} calendar {sorted(settings.items())}"


def ensure_not_linked(
    session: Session, kind: str, settings: dict[str, Any], *, name: str, exclude: int | None
) -> None:
    """Refuse to link a remote calendar that another calendar (not ``exclude``) links."""
    wanted = remote_identity(kind, settings)
    for other in session.scalars(select(Calendar).where(Calendar.kind == kind)):
        if other.id == exclude:
            continue
        if remote_identity(other.kind, dict(other.settings or {})) == wanted:
            raise ConfigError(
                f"{describe(kind, settings)} is linked already, as calendar '{other.name}'; "
                f"a calendar linked twice would duplicate every event. Change that link with "
                f"`calbridge calendars update {other.name} …` instead of adding '{name}'"
            )


def keep_former_links(session: Session, calendar: Calendar, at: datetime) -> int:
    """Copy the links of ``calendar`` (about to be removed) to ``former_links``; returns how
    many. Former links of the same remote calendar kept by an earlier removal are replaced."""
    identity = remote_identity(calendar.kind, dict(calendar.settings or {}))
    session.execute(delete(FormerLink).where(FormerLink.identity == identity))
    columns = [getattr(Link, column) for column in _LINK_COLUMNS]
    rows = [
        {**dict(zip(_LINK_COLUMNS, row, strict=True)), "identity": identity}
        for row in session.execute(select(*columns).where(Link.calendar_id == calendar.id))
    ]
    for row in rows:
        row.update(key_prefix=calendar.key_prefix, removed_at=at)
    if rows:
        session.execute(insert(FormerLink), rows)
    return len(rows)


def adopt_former_links(session: Session, calendar: Calendar) -> int:
    """Give a newly linked ``calendar`` the links it had when the same remote calendar was
    linked before (and its key prefix, so keys stay the ones on the remote objects); returns
    how many. The sync token stays empty: the next sync lists everything and merges."""
    identity = remote_identity(calendar.kind, dict(calendar.settings or {}))
    former = session.scalars(
        select(FormerLink).where(FormerLink.identity == identity).order_by(FormerLink.id)
    ).all()
    if not former:
        return 0
    calendar.key_prefix = former[0].key_prefix
    session.flush()
    rows = [
        {column: getattr(row, column) for column in _LINK_COLUMNS}
        | {"calendar_id": calendar.id, "seen_gen": 0}
        for row in former
    ]
    session.execute(insert(Link), rows)
    session.execute(delete(FormerLink).where(FormerLink.identity == identity))
    return len(rows)
