"""The REST API (``/api``): bookings, directory, settings, calendars, conflicts, rejections,
sync runs and history. Every write calls the same functions as the CLI and the admin UI
(:mod:`calbridge.ops`).

- Authentication: every route needs ``Authorization: Bearer <token>``
  (:mod:`calbridge.service.tokens`; ``calbridge tokens create NAME [--read-only]``); read-only
  tokens cannot write (:mod:`.deps`).
- Errors: RFC 9457 problem details (:mod:`calbridge.service.problems`), also for unknown
  ``/api`` paths.
- Lists: cursor pagination (:mod:`.pagination`); times: RFC 3339 with offsets plus the IANA
  zone (:mod:`.times`).
- OpenAPI: ``/api/openapi.json``, browsable at ``/api/docs``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from calbridge.service.api import bookings, calendars, directory, records
from calbridge.service.problems import ApiProblem, ProblemRoute

router = APIRouter(route_class=ProblemRoute)
for part in (bookings, directory, calendars, records):
    router.include_router(part.router)


@router.api_route(
    "/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def no_such_endpoint(request: Request, path: str) -> None:
    raise ApiProblem(
        404,
        "no-such-endpoint",
        f"there is no API endpoint {request.method} /api/{path}; see /api/docs",
    )
