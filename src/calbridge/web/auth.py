"""Admin accounts, sign-in sessions, CSRF tokens and login throttling for the admin UI.

- Accounts (``calbridge admin create EMAIL [--role admin|viewer]``): argon2 password hashes,
  roles ``admin`` (may write) and ``viewer`` (read-only).
- Sessions: the cookie carries 32 random bytes; the store keeps only their SHA-256, the admin
  and the session's CSRF token. Sessions last :data:`SESSION_HOURS` hours.
- CSRF: every form carries the session's token (``csrf_token`` field, or the ``X-CSRF-Token``
  header for htmx requests); a write without the right token is refused. The sign-in form,
  which has no session yet, uses a double-submit cookie.
- Throttling: :class:`LoginThrottle` refuses sign-in attempts for an address or a client once
  too many failed within a window (counted in the store, so shared by every service process;
  the clock is injected).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calbridge.domain.email import normalize_email
from calbridge.errors import BadEmail, CalbridgeError, NotFound, ValidationFailed
from calbridge.store.events import utcnow
from calbridge.web.models import ROLES, AdminSession, AdminUser, LoginFailure

SESSION_HOURS = 12
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


class AdminExists(CalbridgeError):
    """An admin account with this address already exists."""


@dataclass(frozen=True)
class SignedIn:
    """Who is using the UI in this request."""

    admin_id: int
    email: str
    role: str
    csrf_token: str

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )


def create_admin(session: Session, email: str, password: str, role: str = "admin") -> AdminUser:
    """Add an admin account; the password is stored as an argon2 hash only."""
    try:
        address = normalize_email(email)
    except BadEmail as exc:
        raise ValidationFailed(f"'{email}' is not an email address: {exc}") from exc
    if role not in ROLES:
        raise ValidationFailed(f"role '{role}' is not one of {', '.join(ROLES)}")
    _check_new_password(password)
    if session.scalars(select(AdminUser).where(AdminUser.email == address)).first():
        raise AdminExists(
            f"admin '{address}' already exists; change the password with "
            f"`calbridge admin password {address}`"
        )
    admin = AdminUser(
        email=address, password_hash=_hasher.hash(password), role=role, created_at=utcnow()
    )
    session.add(admin)
    session.flush()
    return admin


def find_admin(session: Session, email: str) -> AdminUser:
    address = email.strip().lower()
    admin = session.scalars(select(AdminUser).where(AdminUser.email == address)).first()
    if admin is None:
        raise NotFound(f"no admin account '{address}' (see `calbridge admin list`)")
    return admin


def set_password(session: Session, email: str, password: str) -> None:
    """Change an admin's password and end all of their sessions."""
    admin = find_admin(session, email)
    _check_new_password(password)
    admin.password_hash = _hasher.hash(password)
    session.execute(delete(AdminSession).where(AdminSession.admin_id == admin.id))


def remove_admin(session: Session, email: str) -> None:
    session.delete(find_admin(session, email))


def authenticate(session: Session, email: str, password: str) -> AdminUser | None:
    """The admin when the password is right, else None (same answer for an unknown address)."""
    admin = session.scalars(
        select(AdminUser).where(AdminUser.email == email.strip().lower())
    ).first()
    if admin is None:
        _hasher.hash(password)  # about the same time as a real check
        return None
    try:
        _hasher.verify(admin.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(admin.password_hash):
        admin.password_hash = _hasher.hash(password)
    admin.last_login_at = utcnow()
    return admin


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, admin: AdminUser, now: datetime | None = None) -> str:
    """A new session for ``admin``; returns the cookie value (stored only as a digest)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(
            token_hash=_digest(token),
            admin_id=admin.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    session.execute(delete(AdminSession).where(AdminSession.expires_at < now))
    return token


def signed_in(session: Session, token: str, now: datetime | None = None) -> SignedIn | None:
    """Who holds this session cookie, or None when it is unknown or expired."""
    now = now or utcnow()
    row = session.execute(
        select(AdminSession, AdminUser)
        .join(AdminUser, AdminUser.id == AdminSession.admin_id)
        .where(AdminSession.token_hash == _digest(token))
    ).first()
    if row is None or row[0].expires_at < now:
        return None
    s, admin = row
    return SignedIn(admin.id, admin.email, admin.role, s.csrf_token)


def end_session(session: Session, token: str) -> None:
    session.execute(delete(AdminSession).where(AdminSession.token_hash == _digest(token)))


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LoginThrottle:
    """At most ``limit`` failed sign-ins per address, and ``client_limit`` per client (one
    office may share an address), within ``window`` — counted in the store
    (:class:`~calbridge.web.models.LoginFailure`), so several service processes behind one
    address share the count.

    A success does not clear the client's failures (an attacker with one right password must
    not reset the counter for the others)."""

    def __init__(
        self,
        limit: int = 5,
        window: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] = utcnow,
        client_limit: int = 20,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.client_limit = client_limit

    @staticmethod
    def _keys(email: str, client: str) -> tuple[str, str]:
        return f"email:{email.strip().lower()}"[:320], f"client:{client}"[:320]

    def retry_after(self, session: Session, email: str, client: str) -> timedelta | None:
        """How long until this address/client may try again, or None when it may now."""
        now = self.clock()
        waits = []
        limits = (self.limit, self.client_limit)
        for key, limit in zip(self._keys(email, client), limits, strict=True):
            recent = (
                select(LoginFailure.at)
                .where(LoginFailure.key == key, LoginFailure.at >= now - self.window)
                .order_by(LoginFailure.at.desc())
                .limit(limit)
            )
            times = list(session.scalars(recent))
            if len(times) >= limit:
                waits.append(times[-1] + self.window - now)
        return max(waits) if waits else None

    def failed(self, session: Session, email: str, client: str) -> None:
        """Count one failed sign-in (and forget those older than the window)."""
        now = self.clock()
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - self.window))
        session.add_all(LoginFailure(key=key, at=now) for key in self._keys(email, client))
