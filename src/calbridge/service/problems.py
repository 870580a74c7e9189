"""Errors of the REST API as RFC 9457 problem details (``application/problem+json``).

Every failure under ``/api`` answers with a JSON object ``{"type", "title", "status",
"detail", "instance"}`` (plus extension members) and never a traceback:

=====================================  ======  =============================================
raised                                 status  type (``urn:calbridge:problem:…``)
=====================================  ======  =============================================
missing / unknown / revoked token      401     ``unauthorized`` (+ ``WWW-Authenticate``)
read-only token on a write             403     ``read-only-token``
``NotFound``                           404     ``not-found``
``ValidationFailed`` (directory…)      422     ``validation-failed`` + ``errors[]``
request body / query not as declared   422     ``invalid-request`` + ``errors[]``
``BadEvent``, ``BadEmail``             422     ``bad-booking`` / ``bad-email``
``ProviderAuthError``                  422     ``calendar-refused-credentials``
``ConfigError``, ``TokenExists``       409     ``configuration-conflict``
``CalendarBusy``, ``CalendarPaused``…  409     ``conflict``
``RateLimited``                        503     ``calendar-rate-limited`` (+ ``Retry-After``)
``ProviderError``                      502     ``calendar-unavailable``
other ``CalbridgeError``               400     ``bad-request``
anything else                          500     ``internal-error`` (logged, details withheld)
=====================================  ======  =============================================

``errors`` lists ``{"path", "message"}`` with JSON paths into the request body (``$.start``,
``$.contacts[3].primary_email``) or ``query.NAME`` for a query parameter, so a client can put
each message next to the field it is about.

The conversion lives in :class:`ProblemRoute`, the API router's route class, so it applies to
``/api`` only and leaves the admin UI's HTML error pages alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from calbridge.errors import (
    BadEmail,
    BadEvent,
    CalbridgeError,
    ConfigError,
    NotFound,
    ProviderAuthError,
    ProviderError,
    RateLimited,
    ValidationFailed,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:calbridge:problem:"


class ApiProblem(Exception):
    """A problem the API answers with directly (authentication, permissions, bad cursors)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    slug: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def split_problem(problem: str) -> dict[str, str]:
    """``"$.contacts[1].company: unknown company 'x'"`` → ``{"path", "message"}``."""
    path, sep, message = problem.partition(": ")
    if sep and path.startswith("$"):
        return {"path": path, "message": message}
    return {"path": "$", "message": problem}


def _location(loc: Sequence[Any]) -> str:
    where, *rest = loc or ("body",)
    if where == "body":
        out = "$"
        for part in rest:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out
    return f"{where}." + ".".join(str(part) for part in rest)


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid"))
        out.append({"path": _location(tuple(error.get("loc", ()))), "message": message})
    return out


# (error class, status, type slug, title); the first match wins, so subclasses come first.
_MAPPING: tuple[tuple[type[CalbridgeError], int, str, str], ...] = (
    (ValidationFailed, 422, "validation-failed", "Validation failed"),
    (NotFound, 404, "not-found", "Not found"),
    (BadEmail, 422, "bad-email", "Not an email address"),
    (BadEvent, 422, "bad-booking", "The booking cannot be stored"),
    (
        ProviderAuthError,
        422,
        "calendar-refused-credentials",
        "The calendar refused the credentials",
    ),
    (RateLimited, 503, "calendar-rate-limited", "The calendar asked us to slow down"),
    (ProviderError, 502, "calendar-unavailable", "The calendar server failed"),
    (ConfigError, 409, "configuration-conflict", "Conflict with the stored configuration"),
)


def calbridge_problem(request: Request, exc: CalbridgeError) -> JSONResponse:
    """The problem response for an expected failure raised by the ops layer."""
    status, slug, title = next(
        ((st, sl, ti) for cls, st, sl, ti in _MAPPING if isinstance(exc, cls)), _fallback(exc)
    )
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, ValidationFailed):
        extra["errors"] = [split_problem(p) for p in exc.problems]
    if isinstance(exc, RateLimited) and exc.retry_after:
        headers["Retry-After"] = str(max(1, int(exc.retry_after)))
    return problem_response(
        request, status, slug, str(exc), title=title, headers=headers or None, **extra
    )


def _fallback(exc: CalbridgeError) -> tuple[int, str, str]:
    name = type(exc).__name__
    if name.endswith(("Busy", "Exists", "Conflict", "Paused")):
        return 409, "conflict", "Conflict"
    return 400, "bad-request", "Bad request"


async def handle(request: Request, exc: Exception) -> Response:
    """Turn any exception raised while serving an ``/api`` request into a problem response."""
    if isinstance(exc, ApiProblem):
        return problem_response(
            request,
            exc.status,
            exc.slug,
            exc.detail,
            title=exc.title,
            headers=exc.headers or None,
            **exc.extra,
        )
    if isinstance(exc, CalbridgeError):
        return calbridge_problem(request, exc)
    if isinstance(exc, RequestValidationError):
        errors = validation_errors(exc)
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        return problem_response(
            request, 422, "invalid-request", detail, title="Invalid request", errors=errors
        )
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(
            request,
            exc.status_code,
            "http-" + str(exc.status_code),
            detail,
            headers=dict(exc.headers) if exc.headers else None,
        )
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return problem_response(
        request,
        500,
        "internal-error",
        "the server failed unexpectedly; the error is in the service's log",
    )


class ProblemRoute(APIRoute):
    """An API route whose failures are answered as problem details (see the module doc)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await original(request)
            except Exception as exc:  # every failure becomes a problem document
                return await handle(request, exc)

        return route_handler
