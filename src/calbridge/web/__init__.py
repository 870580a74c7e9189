"""The admin UI: server-rendered Jinja2 pages with htmx (shipped in the package), mounted at
``/`` on the service's app. Every write goes through :mod:`calbridge.ops`, like the API's."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
