"""Secrets at rest: calendar passwords and tokens are stored Fernet-encrypted.

The key comes from ``CALBRIDGE_SECRET_KEY`` (any string; it is stretched with SHA-256), else from
``secret.key`` in the data directory, created on first use with mode 0600. Losing the key means
re-entering the calendars' credentials; the message says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from calbridge.config import Settings
from calbridge.errors import ConfigError


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key:
            digest = hashlib.sha256(settings.secret_key.encode()).digest()
            return cls(base64.urlsafe_b64encode(digest))
        return cls(_key_file(settings.resolved_data_dir() / "secret.key"))

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, token: str, what: str, fix: str | None = None) -> dict[str, Any]:
        """The sealed value; ConfigError naming ``what`` and ``fix`` (the command that gives
        it its credentials again) when this key cannot open it."""
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


def _key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
