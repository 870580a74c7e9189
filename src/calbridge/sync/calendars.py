"""Linking calendars: the one code path the CLI and the demo share."""

from __future__ import annotations

import secrets as pysecrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.merge import POLICIES
from calbridge.errors import ConfigError, NotFound
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, User
from calbridge.store.secrets import SecretBox
from calbridge.sync.providers import open_provider

DIRECTIONS = ("both", "pull", "push")


def add_caldav_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    url: str,
    username: str,
    password: str,
    *,
    owner: str | None = None,
    policy: str = "booking-wins",
    direction: str = "both",
    horizon_days: int = 365,
    check: bool = True,
) -> Calendar:
    """Store a CalDAV calendar after checking the connection (credentials sealed at rest)."""
    if policy not in POLICIES:
        raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}")
    if direction not in DIRECTIONS:
        raise ConfigError(f"--direction must be one of {', '.join(DIRECTIONS)}")
    if session.scalars(select(Calendar).where(Calendar.name == name)).first() is not None:
        raise ConfigError(f"a calendar called '{name}' exists already")
    if owner is not None and session.get(User, owner) is None:
        raise NotFound(f"--owner: no user has id '{owner}'")
    calendar = Calendar(
        name=name,
        kind="caldav",
        settings={"url": url, "username": username},
        secret=box.seal({"password": password}),
        owner_user_id=owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        key_prefix=pysecrets.token_hex(4),
        full_gen=0,
        created_at=utcnow(),
    )
    if check:
        open_provider(calendar, box).check()
    session.add(calendar)
    session.flush()
    return calendar
