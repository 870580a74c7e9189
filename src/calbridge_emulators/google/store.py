"""Emulator state: principals, calendars, tokens, channels; JSON persistence.

All access goes through :attr:`Store.lock` (a re-entrant lock): the ASGI app, the notification
worker and the Python-level test handle run in different threads.

Persistence (optional): with a data dir the whole state is written as one JSON document
(atomically, via a temp file + rename) when :meth:`Store.save` is called - the emulator calls it
from a background flusher at most every ``flush_interval`` seconds while the state is dirty and
on shutdown - and reloaded on start.  Change sequence numbers are persisted with the events, so
sync tokens stay valid across restarts.  Fault rules, counters and access-token expiry are not
"data" and are not persisted (access tokens are, so a client keeps working across a restart);
neither are consent answers and authorization codes, which live for one sign-in.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import not_found
from .model import (
    AccessToken,
    AuthCode,
    Calendar,
    Channel,
    Consent,
    OAuthClient,
    RefreshGrant,
    ServiceAccount,
    StoredEvent,
    User,
)
from .rooms import Room, answer_rooms
from .timeutil import Clock, is_valid_zone

STATE_FILE = "google-calendar-emulator.json"
STATE_VERSION = 1


class Store:
    """All mutable emulator state."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.on_change: Callable[[str], None] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.seq = 0
        self.users: dict[str, User] = {}
        self.calendars: dict[str, Calendar] = {}
        self.service_accounts: dict[str, ServiceAccount] = {}
        self.oauth_clients: dict[str, OAuthClient] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.revoked: set[str] = set()
        self.channels: dict[str, Channel] = {}
        self.consents: dict[str, Consent] = {}  # the people who can answer the consent page
        self.signed_in: str | None = None  # whose browser session it is (the last consent set)
        self.auth_codes: dict[str, AuthCode] = {}
        self.rooms: dict[str, Room] = {}  # Workspace room resources, by email (rooms.py)
        self.dirty = True

    def reset(self) -> None:
        with self.lock:
            self._reset_state()

    # -- change tracking -------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        self.dirty = True
        return self.seq

    def touch(self, cal: Calendar, ev: StoredEvent, *, new: bool = False) -> None:
        """Record a change of ``ev``: new sequence number, change log entry, notification."""
        ev.seq = self.next_seq()
        if new:
            ev.create_seq = ev.seq
            cal.add_event(ev)
        else:
            cal.log_change(ev)
        ev.refresh_times(cal.time_zone)
        if self.rooms:
            answer_rooms(self.rooms, self.calendars, ev)
        cal.updated = self.clock.time()
        if self.on_change is not None:
            self.on_change(cal.id)

    # -- principals and calendars ----------------------------------------------------------
    def add_user(
        self, email: str, *, display_name: str | None = None, time_zone: str = "UTC"
    ) -> Calendar:
        """Create a user (idempotent) with a primary calendar whose id is the email."""
        email = email.lower()
        with self.lock:
            if email not in self.users:
                self.users[email] = User(email, display_name, time_zone)
            self.dirty = True
            return self._ensure_primary(email, display_name or email, time_zone)

    def _ensure_primary(self, email: str, summary: str, time_zone: str) -> Calendar:
        cal = self.calendars.get(email)
        if cal is None:
            cal = Calendar(id=email, owner=email, summary=summary, time_zone=time_zone)
            cal.primary = True
            cal.updated = self.clock.time()
            self.calendars[email] = cal
        return cal

    def add_room(self, email: str, name: str, capacity: int | None = None) -> Calendar:
        """A Workspace room resource: its resource calendar (id = its email) and its entry in
        the rooms listing; invitations are answered by :func:`rooms.answer_rooms`."""
        email = email.lower()
        with self.lock:
            self.rooms[email] = Room(email, name, capacity)
            cal = self.calendars.get(email)
            if cal is None:
                cal = Calendar(id=email, owner=email, summary=name, time_zone="UTC")
                cal.updated = self.clock.time()
                self.calendars[email] = cal
            return cal

    def add_calendar(
        self,
        owner: str,
        summary: str,
        *,
        time_zone: str = "UTC",
        calendar_id: str | None = None,
        description: str | None = None,
    ) -> Calendar:
        """Create a secondary calendar (``<random>@group.calendar.google.com`` by default)."""
        if not is_valid_zone(time_zone):
            raise ValueError(f"unknown time zone {time_zone!r}")
        with self.lock:
            cid = calendar_id or f"{uuid.uuid4().hex[:26]}@group.calendar.google.com"
            if cid in self.calendars:
                raise ValueError(f"calendar {cid!r} exists")
            cal = Calendar(
                id=cid,
                owner=owner.lower(),
                summary=summary,
                time_zone=time_zone,
                description=description,
            )
            cal.updated = self.clock.time()
            cal.meta_seq = self.next_seq()
            self.calendars[cid] = cal
            return cal

    def share_calendar(self, calendar_id: str, email: str, role: str = "writer") -> None:
        if role not in ("reader", "writer", "owner", "freeBusyReader"):
            raise ValueError(f"unknown role {role!r}")
        with self.lock:
            self.calendars[calendar_id].acl[email.lower()] = role
            self.dirty = True

    def delete_calendar(self, calendar_id: str) -> None:
        with self.lock:
            self.calendars.pop(calendar_id)
            self.dirty = True
            if self.on_change is not None:
                self.on_change(calendar_id)

    def resolve_calendar(self, principal: str, calendar_id: str) -> tuple[Calendar, str]:
        """Return the calendar and the principal's role; unknown or invisible -> 404."""
        cid = principal if calendar_id == "primary" else calendar_id
        cal = self.calendars.get(cid) or self.calendars.get(cid.lower())
        if cal is None:
            raise not_found()
        role = cal.role_for(principal)
        if role is None or role == "freeBusyReader":
            raise not_found()
        return cal, role

    def add_service_account(
        self,
        email: str,
        *,
        key_id: str,
        public_key_pem: str,
        delegation: bool = True,
        delegation_scopes: list[str] | None = None,
        client_id: str | None = None,
    ) -> ServiceAccount:
        """Register (or add a key to) a service account; it also gets its own primary calendar."""
        email = email.lower()
        with self.lock:
            sa = self.service_accounts.get(email)
            if sa is None:
                sa = ServiceAccount(email, client_id or str(10**20 + secrets.randbelow(10**20)))
                self.service_accounts[email] = sa
            sa.keys[key_id] = public_key_pem
            sa.delegation = delegation
            sa.delegation_scopes = delegation_scopes
            self._ensure_primary(email, email, "UTC")
            self.dirty = True
            return sa

    def remove_service_account_key(self, email: str, key_id: str) -> None:
        with self.lock:
            self.service_accounts[email.lower()].keys.pop(key_id, None)
            self.dirty = True

    def add_oauth_client(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> OAuthClient:
        with self.lock:
            cid = client_id or f"{secrets.randbelow(10**12)}-emulator.apps.googleusercontent.com"
            client = OAuthClient(cid, client_secret or secrets.token_urlsafe(18))
            self.oauth_clients[cid] = client
            self.dirty = True
            return client

    def issue_refresh_token(self, client_id: str, principal: str, scopes: list[str]) -> str:
        """Emulate a completed consent: a refresh token for ``principal`` with ``scopes``."""
        with self.lock:
            if client_id not in self.oauth_clients:
                raise KeyError(client_id)
            principal = principal.lower()
            if principal in self.revoked:  # consent after a revocation: old grants stay dead
                self.refresh_tokens = {
                    t: g for t, g in self.refresh_tokens.items() if g.principal != principal
                }
                self.revoked.discard(principal)
            token = "1//" + secrets.token_urlsafe(32)
            self.refresh_tokens[token] = RefreshGrant(token, client_id, principal, scopes)
            self.dirty = True
            return token

    def revoke(self, principal: str) -> None:
        """Revoke all grants of ``principal``: its access tokens stop working immediately."""
        principal = principal.lower()
        with self.lock:
            self.revoked.add(principal)
            for tok in [t for t, a in self.access_tokens.items() if a.principal == principal]:
                del self.access_tokens[tok]
            self.dirty = True

    def restore(self, principal: str) -> None:
        with self.lock:
            self.revoked.discard(principal.lower())
            self.dirty = True

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": STATE_VERSION,
                "seq": self.seq,
                "users": [asdict(u) for u in self.users.values()],
                "calendars": [c.to_json() for c in self.calendars.values()],
                "service_accounts": [asdict(s) for s in self.service_accounts.values()],
                "oauth_clients": [asdict(c) for c in self.oauth_clients.values()],
                "refresh_tokens": [asdict(r) for r in self.refresh_tokens.values()],
                "access_tokens": [asdict(a) for a in self.access_tokens.values()],
                "revoked": sorted(self.revoked),
                "channels": [asdict(c) for c in self.channels.values()],
            }

    def load_json(self, raw: dict[str, Any]) -> None:
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {raw.get('version')!r}")
        with self.lock:
            self._reset_state()
            self.seq = raw["seq"]
            self.users = {u["email"]: User(**u) for u in raw["users"]}
            self.calendars = {c["id"]: Calendar.from_json(c) for c in raw["calendars"]}
            self.service_accounts = {
                s["email"]: ServiceAccount(**s) for s in raw["service_accounts"]
            }
            self.oauth_clients = {c["client_id"]: OAuthClient(**c) for c in raw["oauth_clients"]}
            self.refresh_tokens = {r["token"]: RefreshGrant(**r) for r in raw["refresh_tokens"]}
            self.access_tokens = {a["token"]: AccessToken(**a) for a in raw["access_tokens"]}
            self.revoked = set(raw["revoked"])
            self.channels = {c["id"]: Channel(**c) for c in raw["channels"]}
            self.dirty = False

    def save(self, data_dir: Path) -> Path:
        """Write the state atomically to ``data_dir``; returns the file path."""
        data_dir.mkdir(parents=True, exist_ok=True)
        target = data_dir / STATE_FILE
        with self.lock:
            payload = json.dumps(self.to_json(), separators=(",", ":"))
            self.dirty = False
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".state-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
        os.replace(tmp, target)
        return target

    def load(self, data_dir: Path) -> bool:
        """Load state from ``data_dir`` if a state file exists; returns whether it did."""
        target = data_dir / STATE_FILE
        if not target.exists():
            return False
        with open(target, encoding="utf-8") as fh:
            self.load_json(json.load(fh))
        return True
