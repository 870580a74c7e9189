"""Settings read from ``CALBRIDGE_*`` environment variables.

No module-level state: call :func:`load_settings` where settings are needed. This is a plain
dataclass read from ``os.environ`` (not pydantic-settings): every command reads it, so it must
cost nothing at start-up. A variable set to an empty string counts as unset. The service's
own, larger settings (``service/settings.py``) keep pydantic-settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from calbridge.errors import ConfigError

ENV_PREFIX = "CALBRIDGE_"


@dataclass(frozen=True)
class Settings:
    """calbridge's process settings.

    ``database_url`` unset means SQLite in the data directory; ``data_dir`` unset means the
    platform's user data directory (``~/.local/share/calbridge`` on Linux); ``log_file`` unset
    means ``calbridge.log`` in the data directory (see ``logs.py``).
    """

    database_url: str | None = None
    data_dir: Path | None = None
    secret_key: str | None = None
    log_file: Path | None = None

    def __post_init__(self) -> None:
        for name in ("data_dir", "log_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    @classmethod
    def from_env(cls) -> Settings:
        def env(name: str) -> str | None:
            return os.environ.get(ENV_PREFIX + name.upper()) or None

        data_dir, log_file = env("data_dir"), env("log_file")
        return cls(
            database_url=env("database_url"),
            data_dir=Path(data_dir) if data_dir else None,
            secret_key=env("secret_key"),
            log_file=Path(log_file) if log_file else None,
        )

    def resolved_data_dir(self) -> Path:
        """The data directory, created private (0700) when missing; a folder that cannot be
        created is a :class:`ConfigError` naming it and the variable that moves it."""
        if self.data_dir is not None:
            path = self.data_dir
        else:
            import platformdirs

            path = Path(platformdirs.user_data_dir("calbridge", appauthor=False))
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
    return Settings.from_env()
