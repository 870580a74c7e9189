"""``/api/calendars`` (placeholder while the calendar routes are written)."""

from __future__ import annotations

from fastapi import APIRouter

from calbridge.service.problems import ProblemRoute

router = APIRouter(route_class=ProblemRoute, prefix="/calendars", tags=["calendars"])
