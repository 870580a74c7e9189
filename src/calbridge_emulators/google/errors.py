"""Google-style JSON error responses.

Google APIs answer errors with the documented envelope::

    {"error": {"code": 409, "message": "The requested identifier already exists.",
               "errors": [{"domain": "global", "reason": "duplicate",
                           "message": "The requested identifier already exists."}],
               "status": "ALREADY_EXISTS"}}

``errors[].reason`` is what clients (and ``googleapiclient``'s retry logic, which looks for
``rateLimitExceeded`` / ``userRateLimitExceeded`` in 403 bodies) act upon.  The ``status``
field follows Google's canonical mapping; for 410 (no canonical code) it is omitted, as in
the real Calendar responses observed in the wild.
"""

from __future__ import annotations

from typing import Any

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}

HTTP_REASONS: dict[int, str] = {
    200: "OK",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answered to an API call in Google's JSON error format."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        top_message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.top_message = top_message or message
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type:
            item["locationType"] = self.location_type
        if self.location:
            item["location"] = self.location
        body: dict[str, Any] = {"code": self.code, "message": self.top_message, "errors": [item]}
        status = STATUS_NAMES.get(self.code)
        if status:
            body["status"] = status
        return {"error": body}


def not_found(message: str = "Not Found") -> ApiError:
    return ApiError(404, "notFound", message)


def duplicate() -> ApiError:
    return ApiError(409, "duplicate", "The requested identifier already exists.")


def invalid(message: str, *, location: str | None = None) -> ApiError:
    return ApiError(
        400, "invalid", message, location=location, location_type="parameter" if location else None
    )


def bad_request(message: str = "Bad Request") -> ApiError:
    return ApiError(400, "badRequest", message)


def required(message: str) -> ApiError:
    return ApiError(400, "required", message)


def condition_not_met() -> ApiError:
    return ApiError(
        412, "conditionNotMet", "Precondition Failed", location="If-Match", location_type="header"
    )


def full_sync_required() -> ApiError:
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location="syncToken",
        location_type="parameter",
    )


def deleted() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def required_access_level() -> ApiError:
    return ApiError(403, "requiredAccessLevel", "You need to have writer access to this calendar.")


def auth_required() -> ApiError:
    return ApiError(
        401,
        "required",
        "Login Required.",
        location="Authorization",
        location_type="header",
        top_message=(
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
        ),
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def auth_error() -> ApiError:
    return ApiError(
        401,
        "authError",
        "Invalid Credentials",
        location="Authorization",
        location_type="header",
        top_message=(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential."
        ),
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def insufficient_permissions() -> ApiError:
    return ApiError(
        403,
        "insufficientPermissions",
        "Insufficient Permission",
        top_message="Request had insufficient authentication scopes.",
        headers={
            "WWW-Authenticate": (
                'Bearer realm="https://accounts.google.com/", error="insufficient_scope"'
            )
        },
    )


class OAuthError(Exception):
    """An RFC 6749 token-endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
