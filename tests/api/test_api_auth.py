"""Authentication and errors: every /api route needs a token, read-only tokens cannot write,
and every failure is an RFC 9457 problem document."""

from __future__ import annotations

import pytest
from api_client import Api, bearer
from api_problem import problem as _is_problem

BOOKING = {
    "name": "Board dinner",
    "start": "2027-03-05T18:00:00",
    "end": "2027-03-05T21:00:00",
    "timezone": "Europe/Berlin",
    "booker": "ann.lee@acme.example",
}


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Nothing here depends on the database: SQLite only (the other API tests run on both)."""
    return sqlite_url


def test_every_route_requires_a_token(api: Api) -> None:
    for method, path in [
        ("GET", "/api/bookings"),
        ("GET", "/api/bookings/1"),
        ("POST", "/api/bookings"),
        ("GET", "/api/directory"),
        ("GET", "/api/settings"),
        ("GET", "/api/calendars"),
        ("GET", "/api/conflicts"),
        ("GET", "/api/rejections"),
        ("GET", "/api/runs"),
        ("GET", "/api/history"),
    ]:
        response = api.client.request(method, path)
        body = _is_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "calbridge tokens create" in body["detail"]


def test_unknown_or_revoked_token_is_refused(api: Api) -> None:
    from calbridge.service.tokens import revoke_token

    assert api.get("/api/bookings", headers=bearer("cbt_not-a-real-token")).status_code == 401
    assert api.get("/api/bookings").status_code == 200
    with api.store.session() as s:
        revoke_token(s, "booking-site", actor="test")
    body = _is_problem(api.get("/api/bookings"), 401)
    assert "unknown or was revoked" in body["detail"]


def test_read_only_token_reads_but_cannot_write(api: Api) -> None:
    assert api.get("/api/bookings", headers=api.reader).status_code == 200
    before = api.count("events")
    body = _is_problem(api.post("/api/bookings", json=BOOKING, headers=api.reader), 403)
    assert "'dashboard' is read-only" in body["detail"]
    _is_problem(api.patch("/api/settings", json={}, headers=api.reader), 403)
    _is_problem(api.post("/api/directory/import", json={}, headers=api.reader), 403)
    assert api.count("events") == before


def test_tokens_never_appear_in_responses(api: Api) -> None:
    token = api.writer["Authorization"].split()[1]
    created = api.post("/api/bookings", json=BOOKING)
    assert created.status_code == 201, created.text
    for path in ("/api/bookings", f"/api/bookings/{created.json()['id']}", "/api/history"):
        text = api.get(path).text
        assert token not in text
        assert token[4:20] not in text


def test_unknown_endpoint_is_a_problem(api: Api) -> None:
    body = _is_problem(api.get("/api/no-such-thing"), 404)
    assert "/api/docs" in body["detail"]


def test_openapi_document_lists_the_api(api: Api) -> None:
    spec = api.client.get("/api/openapi.json").json()
    assert "/api/bookings" in spec["paths"]
    assert "/api/bookings/{booking_id}/reassign" in spec["paths"]
    assert api.client.get("/api/docs").status_code == 200
