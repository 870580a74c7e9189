"""Email alerts: a calendar that needs a person tells its owner and the admins, once.

A calendar entering ``error``, ``auth_expired`` or ``needs_confirmation`` (the run state kept
by :mod:`calbridge.service.runs` and the mass-cancellation guard) sends one email to its
owner (the staff user's primary address) and to the admins (the admin UI's ``admin`` accounts
and ``CALBRIDGE_ALERT_EMAILS``); when it is back to ``ok``, one more email says it recovered.
``syncing`` and ``paused`` change nothing (a calendar retrying goes error → syncing → error:
that is one alert, not three).

How "once" holds: :class:`Alerter` compares each calendar's state with the last state it
announced, kept in ``calendar_alerts`` (so a restart does not repeat an alert). It runs from
the scheduler every few seconds, in whichever process runs the scheduler. A mail that cannot
be sent (SMTP down) is logged and tried again at a later pass; nothing is marked as sent.

Settings (``CALBRIDGE_*``): ``SMTP_HOST`` (unset: no alerts, said once), ``SMTP_PORT`` (25),
``SMTP_FROM``, ``SMTP_USERNAME`` / ``SMTP_PASSWORD``, ``SMTP_STARTTLS``, ``ALERT_EMAILS``
(comma-separated). Emails are plain text: names from outside are never rendered as markup.
"""

from __future__ import annotations

import email.policy
import logging
import smtplib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, CalendarAlert, UserEmail
from calbridge.sync.guard import held_cancellations

log = logging.getLogger(__name__)

ALERT_STATES = ("error", "auth_expired", "needs_confirmation")
NEUTRAL_STATES = ("syncing", "paused")
RETRY_SECONDS = 60.0
CHECK_SECONDS = 5.0
HELD_SHOWN = 25


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALBRIDGE_", extra="ignore")

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "calbridge@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    alert_emails: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_host)

    def extra_recipients(self) -> list[str]:
        return [a.strip() for a in self.alert_emails.split(",") if a.strip()]


@dataclass(frozen=True)
class Alert:
    """One email to send: what about, to whom, what it says."""

    calendar_id: int
    state: str | None  # the state announced; None: recovered
    to: tuple[str, ...]
    subject: str
    body: str


@dataclass
class Alerter:
    store: Store
    settings: AlertSettings = field(default_factory=AlertSettings)
    _retry_at: dict[int, float] = field(default_factory=dict)
    _said_off: bool = False

    def run_once(self) -> list[Alert]:
        """Send what changed since the last pass; returns the alerts sent."""
        if not self.settings.enabled:
            if not self._said_off:
                log.info("alerts are off: set CALBRIDGE_SMTP_HOST to receive them by email")
                self._said_off = True
            return []
        sent: list[Alert] = []
        for alert in self.pending():
            if self._retry_at.get(alert.calendar_id, 0.0) > time.monotonic():
                continue
            try:
                send_email(self.settings, alert)
            except (OSError, smtplib.SMTPException) as exc:
                self._retry_at[alert.calendar_id] = time.monotonic() + RETRY_SECONDS
                log.warning(
                    "alert not sent",
                    extra={"calendar_id": alert.calendar_id, "error": str(exc)[:200]},
                )
                continue
            self._retry_at.pop(alert.calendar_id, None)
            self._mark(alert)
            sent.append(alert)
        return sent

    def pending(self) -> list[Alert]:
        """The alerts due now: a calendar's state differs from the one last announced."""
        alerts: list[Alert] = []
        try:
            with self.store.session() as session:
                announced = {
                    row.calendar_id: row.state for row in session.scalars(select(CalendarAlert))
                }
                admins = self._admins(session)
                for calendar in session.scalars(select(Calendar).order_by(Calendar.id)):
                    alert = self._alert_for(session, calendar, announced.get(calendar.id), admins)
                    if alert is not None:
                        alerts.append(alert)
        except SQLAlchemyError as exc:
            log.warning("alerts: store unreachable", extra={"error": exc.__class__.__name__})
            return []
        return alerts

    def _alert_for(
        self, session: Session, calendar: Calendar, announced: str | None, admins: list[str]
    ) -> Alert | None:
        state = calendar.state
        if state in NEUTRAL_STATES or state == announced:
            return None
        if state not in ALERT_STATES and announced is None:
            return None  # fine, and nothing was announced
        recipients = _unique([*_owner(session, calendar), *admins])
        if not recipients:
            return None
        if state in ALERT_STATES:
            subject, body = _trouble(session, calendar)
            return Alert(calendar.id, state, recipients, subject, body)
        subject = f"calbridge: calendar '{calendar.name}' is syncing again"
        body = (
            f"Calendar '{calendar.name}' ({calendar.kind}) synced successfully again "
            f"(it was in state {announced}). Nothing more to do.\n"
        )
        return Alert(calendar.id, None, recipients, subject, body)

    def _admins(self, session: Session) -> list[str]:
        found = list(self.settings.extra_recipients())
        try:
            from calbridge.web.models import AdminUser
        except ImportError:  # the admin UI is not installed
            return found
        rows = session.scalars(select(AdminUser.email).where(AdminUser.role == "admin"))
        return found + [str(email) for email in rows]

    def _mark(self, alert: Alert) -> None:
        with self.store.session() as session:
            row = session.get(CalendarAlert, alert.calendar_id)
            if alert.state is None:
                if row is not None:
                    session.delete(row)
                return
            if row is None:
                session.add(
                    CalendarAlert(
                        calendar_id=alert.calendar_id, state=alert.state, notified_at=utcnow()
                    )
                )
            else:
                row.state, row.notified_at = alert.state, utcnow()


def _owner(session: Session, calendar: Calendar) -> list[str]:
    if not calendar.owner_user_id:
        return []
    rows = session.scalars(
        select(UserEmail.address)
        .where(UserEmail.user_id == calendar.owner_user_id)
        .order_by(UserEmail.is_primary.desc(), UserEmail.position)
        .limit(1)
    )
    return [str(address) for address in rows]


def _trouble(session: Session, calendar: Calendar) -> tuple[str, str]:
    what = {
        "error": "cannot sync",
        "auth_expired": "lost its access (credentials refused or expired)",
        "needs_confirmation": "waits for you to confirm cancellations",
    }[calendar.state]
    lines = [
        f"Calendar '{calendar.name}' ({calendar.kind}) {what}.",
        "",
        f"State: {calendar.state}",
    ]
    if calendar.last_error:
        lines.append(f"Error: {calendar.last_error}")
    if calendar.error_hint:
        lines.append(f"What to do: {calendar.error_hint}")
    if calendar.state == "needs_confirmation":
        held = held_cancellations(session, calendar.id)
        lines += ["", f"The sync would cancel these {len(held)} bookings:"]
        lines += [f"  #{h.event_id} {h.start}  {h.name}  ({h.reason})" for h in held[:HELD_SHOWN]]
        if len(held) > HELD_SHOWN:
            lines.append(f"  … and {len(held) - HELD_SHOWN} more")
    lines += ["", "You will get one more email when it syncs again."]
    return f"calbridge: calendar '{calendar.name}' {what}", "\n".join(lines) + "\n"


def _unique(addresses: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for address in addresses:
        seen.setdefault(address.strip().lower(), None)
    return tuple(a for a in seen if a)


# Headers up to RFC 5322's hard limit on one line: Python's folding at 78 characters moves a
# subject with quotes in it whole onto a continuation line, which readers show with a leading
# blank (found by the service's end-to-end alert test).
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


def send_email(settings: AlertSettings, alert: Alert) -> None:
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(alert.to)
    message["Subject"] = alert.subject
    message.set_content(alert.body)
    assert settings.smtp_host is not None
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(message)
