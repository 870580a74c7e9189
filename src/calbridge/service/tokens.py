"""API tokens: who may call the REST API, and whether they may write.

``calbridge tokens create NAME [--read-only]`` makes a token and shows it once; the store keeps
only its SHA-256 digest (a token is 256 random bits, so a fast digest is as safe as a slow
password hash and costs nothing per request) and a short ``hint`` (its first characters) to
tell tokens apart in listings. A request presents it as ``Authorization: Bearer <token>``;
:func:`authenticate` finds the token by digest. Read-only tokens may only read.

Revoking deletes the token; creating and revoking are recorded in the history (subject
``token``) with the actor. Neither the token nor its digest ever appears in a response or a log
line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from calbridge.errors import CalbridgeError, NotFound
from calbridge.ops.history import now_utc, record
from calbridge.store.models import Base

PREFIX = "cbt_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
#: ``last_used_at`` is refreshed at most this often, so reads do not turn into writes.
TOUCH_EVERY = timedelta(minutes=1)


class TokenExists(CalbridgeError):
    """A token with this name exists already."""

    exit_code = 2


class BadTokenName(CalbridgeError):
    """A token name that is empty, too long or has characters outside [A-Za-z0-9._@-]."""

    exit_code = 2


class ApiToken(Base):
    """One API token (table ``api_tokens``); the token itself is never stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never the token or its digest."""

    name: str
    hint: str
    read_only: bool
    created_at: datetime
    last_used_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "hint": self.hint,
            "read_only": self.read_only,
            "created_at": self.created_at.isoformat() + "Z",
            "last_used_at": self.last_used_at.isoformat() + "Z" if self.last_used_at else None,
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.name, row.hint, row.read_only, row.created_at, row.last_used_at)


def create_token(
    session: Session, name: str, *, read_only: bool = False, actor: str = "cli"
) -> tuple[TokenInfo, str]:
    """A new token called ``name``; returns its description and the token (shown once)."""
    if not NAME_PATTERN.match(name):
        raise BadTokenName(
            f"token name '{name}' is not usable: use 1-100 letters, digits, '.', '_', '@' or '-'"
        )
    if session.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise TokenExists(
            f"a token called '{name}' exists already; revoke it first with "
            f"`calbridge tokens revoke {name}` or choose another name"
        )
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        token_hash=_digest(token),
        hint=token[: len(PREFIX) + 4],
        read_only=read_only,
        created_at=now_utc(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        subject="token",
        subject_id=name,
        action="created",
        details={"read_only": read_only},
    )
    return _info(row), token


def list_tokens(session: Session) -> list[TokenInfo]:
    return [_info(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.name))]


def revoke_token(session: Session, name: str, *, actor: str = "cli") -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise NotFound(f"no API token is called '{name}' (see `calbridge tokens list`)")
    session.delete(row)
    record(session, actor=actor, subject="token", subject_id=name, action="revoked")


def authenticate(session: Session, token: str) -> TokenInfo | None:
    """The token presented in a request, or None when it is unknown or revoked."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    digest = _digest(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    now = now_utc()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return _info(row)
