"""Settings read from ``CALBRIDGE_*`` environment variables (and an optional TOML file).

No module-level state: call :func:`load_settings` where settings are needed.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic_settings import BaseSettings, SettingsConfigDict

from calbridge.errors import ConfigError


class Settings(BaseSettings):
    """calbridge's process settings.

    ``database_url`` unset means SQLite in the data directory; ``data_dir`` unset means the
    platform's user data directory (``~/.local/share/calbridge`` on Linux); ``log_file`` unset
    means ``calbridge.log`` in the data directory (see ``logs.py``).
    """

    model_config = SettingsConfigDict(env_prefix="CALBRIDGE_", extra="ignore")

    database_url: str | None = None
    data_dir: Path | None = None
    secret_key: str | None = None
    log_file: Path | None = None

    def resolved_data_dir(self) -> Path:
        """The data directory, created private (0700) when missing; a folder that cannot be
        created is a :class:`ConfigError` naming it and the variable that moves it."""
        path = self.data_dir or Path(platformdirs.user_data_dir("calbridge", appauthor=False))
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise ConfigError(
                f"the data directory {path} is a file, not a folder; "
                "set CALBRIDGE_DATA_DIR to a folder you can write"
            ) from exc
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise ConfigError(
                f"cannot create the data directory {path}: {reason}; "
                "set CALBRIDGE_DATA_DIR to a folder you can write"
            ) from exc
        if not path.is_dir():
            raise ConfigError(
                f"the data directory {path} is not a folder; "
                "set CALBRIDGE_DATA_DIR to a folder you can write"
            )
        return path

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir() / 'calbridge.db'}"


def load_settings() -> Settings:
    return Settings()
