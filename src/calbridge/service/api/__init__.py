"""The REST API (``/api``): bookings, directory, settings, calendars, conflicts, rejections,
sync runs. Every write calls the same functions as the CLI and the admin UI
(:mod:`calbridge.ops`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
