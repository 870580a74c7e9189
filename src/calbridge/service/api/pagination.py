"""Cursor pagination for every list under ``/api``.

A list answers ``{"items": [...], "next_cursor": "…" | null}`` and, when there is a next page,
a ``Link: <…?cursor=…>; rel="next"`` header. The cursor is opaque to clients (base64url of the
position after the page's last row: keyset pagination, so a page is one indexed query however
deep it is and rows added meanwhile are neither skipped nor repeated). A cursor this API did
not give out is a 400 problem.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Query, Request, Response

from calbridge.service.problems import ApiProblem

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

LimitQuery = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page (1-200)")
CursorQuery = Query(None, description="`next_cursor` of the previous page")


def encode(kind: str, position: list[Any]) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, kind: str, arity: int) -> list[Any] | None:
    """The position stored in ``cursor`` (None for the first page)."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, list) or len(value) != arity + 1 or value[0] != kind:
        raise bad_cursor(cursor)
    return value[1:]


def bad_cursor(cursor: str | None) -> ApiProblem:
    return ApiProblem(
        400,
        "bad-cursor",
        f"cursor '{(cursor or '')[:40]}' is not one this list gave out; start again without it",
        title="Bad cursor",
        errors=[{"path": "query.cursor", "message": "not a cursor of this list"}],
    )


def page(
    request: Request, response: Response, items: list[Any], next_cursor: str | None
) -> dict[str, Any]:
    """The page body; adds the ``Link: rel="next"`` header when there is more."""
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return {"items": items, "next_cursor": next_cursor}
