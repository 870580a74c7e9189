"""Secrets at rest: calendar passwords and tokens are stored Fernet-encrypted.

The key comes from ``CALBRIDGE_SECRET_KEY`` (any string; it is stretched with SHA-256), else from
``secret.key`` in the data directory, created on first use with mode 0600. Losing the key means
re-entering the calendars' credentials; the message says so. A key file that is missing while
the database holds sealed secrets is *not* silently recreated (a new key could open none of
them): that is a :class:`ConfigError` saying how to restore the key or re-enter credentials, as
is a key file that is not a key (corrupted, truncated, edited).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calbridge.config import Settings
from calbridge.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class SecretBox:
    """Seals and opens the calendars' credentials with the store's key (Fernet).

    The key is checked when the box is made, as Fernet checks it (32 url-safe base64-encoded
    bytes, else ``ValueError``); ``cryptography`` itself is imported on the first seal or open,
    so a ``calbridge sync`` whose calendar needs no secret in this process never loads it."""

    def __init__(self, key: bytes) -> None:
        if len(base64.urlsafe_b64decode(key)) != 32:  # binascii.Error is a ValueError too
            raise ValueError("a Fernet key is 32 url-safe base64-encoded bytes")
        self._key = key
        self._made: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._made is None:
            from cryptography.fernet import Fernet

            self._made = Fernet(self._key)
        return self._made

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key:
            digest = hashlib.sha256(settings.secret_key.encode()).digest()
            return cls(base64.urlsafe_b64encode(digest))
        path = settings.resolved_data_dir() / "secret.key"
        if not path.exists():
            _refuse_if_sealed(settings, path)
        key = _key_file(path)
        try:
            return cls(key)
        except ValueError as exc:
            raise ConfigError(
                f"the secret key file {path} is damaged (it does not hold a key: 32 url-safe "
                "base64-encoded bytes); restore it from a backup, or — if there is none — move it "
                "away and add each calendar again with its credentials "
                "(`calbridge calendars remove NAME`, then `calbridge calendars add NAME …`)"
            ) from exc

    @staticmethod
    def generate_key() -> bytes:
        from cryptography.fernet import Fernet

        return Fernet.generate_key()

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, token: str, what: str, fix: str | None = None) -> dict[str, Any]:
        """The sealed value; ConfigError naming ``what`` and ``fix`` (the command that gives
        it its credentials again) when this key cannot open it."""
        from cryptography.fernet import InvalidToken

        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigError(
                f"{what}: the stored secret cannot be decrypted with this secret key "
                "(CALBRIDGE_SECRET_KEY or the data directory's secret.key changed); "
                + (
                    fix
                    or "give the calendar its credentials again with `calbridge calendars "
                    "update NAME` and its credential option"
                )
            ) from exc
        return data


def _refuse_if_sealed(settings: Settings, path: Path) -> None:
    """A missing key file is only created when no stored secret needs the old key."""
    from sqlalchemy import select

    from calbridge.store.db import open_store
    from calbridge.store.models import Calendar

    store = open_store(settings.resolved_database_url())
    try:
        with store.session() as session:
            sealed = session.scalars(
                select(Calendar.name).where(Calendar.secret.is_not(None)).order_by(Calendar.name)
            ).all()
    finally:
        store.dispose()
    if sealed:
        names = ", ".join(f"'{n}'" for n in sealed[:5]) + (" …" if len(sealed) > 5 else "")
        raise ConfigError(
            f"the secret key file {path} is missing, but the database holds the sealed "
            f"credentials of {len(sealed)} calendar(s) ({names}) that only that key opens; "
            "restore secret.key from a backup (or set CALBRIDGE_SECRET_KEY to the key used "
            "before) — or, to start over, re-enter the credentials: `calbridge calendars remove "
            "NAME` and `calbridge calendars add NAME …` for each (a new key is then created)"
        )


def _key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    key = SecretBox.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
