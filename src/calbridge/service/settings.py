"""The service's settings: one pydantic-settings object read from ``CALBRIDGE_*`` variables.

``calbridge serve`` / ``calbridge worker`` build it from the environment and then apply their
command-line flags on top (a flag wins over the variable). Nothing here opens anything.

Polling: CalDAV calendars are polled every 2 minutes (a no-change poll is one request); Google,
Graph and Exchange calendars every 15 minutes as a backstop behind push. Without a public URL
Google and Microsoft cannot call us back, so their push is off and their interval is shortened
to ``poll_without_push_seconds``; Exchange streams need no public URL (the service keeps the
connection to Exchange open), so Exchange keeps its 15 minutes. A calendar may carry its own
interval (``calendars.poll_seconds``), which wins over these defaults.

Idle connections stay open ``keep_alive_seconds`` (75 s): Google's and Microsoft's senders and
a reverse proxy in front keep connections to us alive, and a server that closes an idle one
first (uvicorn's default is 5 s) races the sender's next request on it — the sender sees a
reset connection. Above the 60 s idle timeout of common proxies and load balancers, the proxy
closes first, which it handles cleanly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["text", "json"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALBRIDGE_", extra="ignore")

    public_url: str | None = Field(
        default=None, description="base URL Google and Microsoft call back (push); unset: no push"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=2, ge=0, description="in-process sync workers (SQLite)")
    poll_caldav_seconds: float = Field(default=120.0, gt=0)
    poll_google_seconds: float = Field(default=900.0, gt=0)
    poll_graph_seconds: float = Field(default=900.0, gt=0)
    poll_ews_seconds: float = Field(default=900.0, gt=0)
    poll_without_push_seconds: float = Field(default=120.0, gt=0)
    idle_backoff: bool = Field(
        default=False, description="double a calendar's interval (up to 4x) while nothing changes"
    )
    log_format: LogFormat = "text"
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    runs_keep_days: int = Field(default=30, ge=1)
    retry_attempts: int = Field(default=5, ge=0, description="retries of a transient failure")
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    worker_seen_seconds: float = Field(default=60.0, gt=0, description="for /readyz")
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    stalled_after_seconds: float = Field(
        default=30.0, gt=0, description="a worker silent this long lost its jobs (killed)"
    )
    stalled_check_seconds: float = Field(default=10.0, gt=0)
    keep_alive_seconds: float = Field(
        default=75.0,
        gt=0,
        description="how long an idle HTTP connection stays open (above a proxy's idle timeout)",
    )

    @property
    def push_enabled(self) -> bool:
        return bool(self.public_url)

    def poll_interval(self, kind: str) -> float:
        """Default seconds between polls of a calendar of this kind."""
        from calbridge.providers.registry import KINDS, calls_back, kind_of

        if kind not in KINDS or kind_of(kind).notify is None:  # polled only, like CalDAV
            return self.poll_caldav_seconds
        interval = float(getattr(self, f"poll_{kind}_seconds", self.poll_graph_seconds))
        if calls_back(kind) and not self.push_enabled:
            return min(interval, self.poll_without_push_seconds)
        return interval  # push keeps it current: polling is the backstop


def load_service_settings(**overrides: object) -> ServiceSettings:
    """Settings from the environment with the given (non-None) command-line values on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return ServiceSettings(**given)  # type: ignore[arg-type]
