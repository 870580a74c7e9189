"""Settings read from ``CALBRIDGE_*`` environment variables (and an optional TOML file).

No module-level state: call :func:`load_settings` where settings are needed.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        path = self.data_dir or Path(platformdirs.user_data_dir("calbridge", appauthor=False))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir() / 'calbridge.db'}"


def load_settings() -> Settings:
    return Settings()
