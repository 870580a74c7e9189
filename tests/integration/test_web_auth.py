"""The admin UI's security rules without a browser: admin accounts through the real CLI,
argon2 hashes, session expiry, login throttling (injected clock), cookies' flags, CSRF and
roles on the real app (in-process ASGI client), and the safe redirect after sign-in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from calbridge.service.app import create_app
from calbridge.store.db import Store, open_store
from calbridge.web.auth import (
    SESSION_HOURS,
    LoginThrottle,
    authenticate,
    create_admin,
    signed_in,
    start_session,
)
from calbridge.web.models import AdminUser, LoginFailure
from calbridge_cli import make_inprocess_cli

PASSWORD = "a-long-enough-password"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'calbridge.db'}")
    yield store
    store.dispose()


def sign_in(client: TestClient, email: str, password: str = PASSWORD, next_: str = "/") -> object:
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token[1], "next": next_},
        follow_redirects=False,
    )


def csrf_of(page: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return token[1]


def test_admin_create_stores_an_argon2_hash_and_never_prints_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    cli = make_inprocess_cli(tmp_path, url)
    monkeypatch.setenv("PW", PASSWORD)
    created = cli(
        "admin", "create", "Ann@Venue.example", "--role", "viewer", "--password-env", "PW"
    )
    assert created.code == 0, created.err
    assert PASSWORD not in created.out + created.err
    listed = cli("admin", "list", "--json")
    assert [(a["email"], a["role"]) for a in json.loads(listed.out)] == [
        ("ann@venue.example", "viewer")
    ]
    assert PASSWORD not in listed.out and "argon2" not in listed.out
    store = open_store(url)
    with store.session() as s:
        stored = s.scalars(select(AdminUser)).one().password_hash
        assert stored.startswith("$argon2")
        assert authenticate(s, "ann@venue.example", PASSWORD) is not None
        assert authenticate(s, "ann@venue.example", PASSWORD + "x") is None
    store.dispose()


@pytest.mark.parametrize(
    ("args", "env", "message", "code"),
    [
        (
            ["--role", "owner"],
            {"PW": PASSWORD},
            "--role must be one of admin, viewer, not 'owner'",
            2,
        ),
        ([], {"PW": "short"}, "the password is too short: use at least 10 characters", 2),
        ([], {}, "--password-env: the environment variable PW is not set", 1),
    ],
)
def test_admin_create_refuses_bad_input_with_one_line_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
    code: int,
) -> None:
    cli = make_inprocess_cli(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.delenv("PW", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = cli("admin", "create", "ann@venue.example", "--password-env", "PW", *args)
    assert result.code == code
    assert result.err.strip() == f"error: {message}"
    assert json.loads(cli("admin", "list", "--json").out) == []


def test_admin_create_twice_says_how_to_change_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_inprocess_cli(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("PW", PASSWORD)
    first = cli("admin", "create", "ann@venue.example", "--password-env", "PW")
    assert first.code == 0
    again = cli("admin", "create", "ann@venue.example", "--password-env", "PW")
    assert again.code == 1
    assert "already exists; change the password with `calbridge admin password" in again.err


def test_a_session_ends_after_its_lifetime(sqlite_store: Store) -> None:
    start = datetime(2026, 12, 1, 9, 0)
    with sqlite_store.session() as s:
        admin = create_admin(s, "ann@venue.example", PASSWORD)
        token = start_session(s, admin, now=start)
    with sqlite_store.session() as s:
        assert signed_in(s, token, now=start + timedelta(hours=SESSION_HOURS - 1)) is not None
        assert signed_in(s, token, now=start + timedelta(hours=SESSION_HOURS, seconds=1)) is None
        assert signed_in(s, "not-a-token", now=start) is None


def test_login_throttle_counts_failures_per_address_and_per_client_within_the_window(
    sqlite_store: Store,
) -> None:
    now = [datetime(2026, 12, 1, 9, 0)]

    def process() -> LoginThrottle:  # each service process has its own throttle object
        return LoginThrottle(limit=3, window=timedelta(minutes=10), clock=lambda: now[0],
                             client_limit=5)  # fmt: skip

    def retry_after(email: str, client: str) -> timedelta | None:
        with sqlite_store.session() as s:
            return process().retry_after(s, email, client)

    def failed(email: str, client: str) -> None:
        with sqlite_store.session() as s:
            process().failed(s, email, client)

    for _ in range(3):
        assert retry_after("ann@venue.example", "10.0.0.1") is None
        failed("ann@venue.example", "10.0.0.1")
    wait = retry_after("ANN@venue.example ", "10.0.0.2")
    assert wait == timedelta(minutes=10)
    assert retry_after("bob@venue.example", "10.0.0.1") is None  # 3 < client limit
    failed("bob@venue.example", "10.0.0.1")
    failed("bob@venue.example", "10.0.0.1")
    assert retry_after("carol@venue.example", "10.0.0.1") is not None  # client: 5
    now[0] += timedelta(minutes=10, seconds=1)
    assert retry_after("ann@venue.example", "10.0.0.1") is None
    failed("dan@venue.example", "10.0.0.9")  # a new failure clears those out of the window
    with sqlite_store.session() as s:
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 2


def test_session_cookie_is_httponly_samesite_lax_and_secure_behind_https(
    sqlite_store: Store,
) -> None:
    with sqlite_store.session() as s:
        create_admin(s, "ann@venue.example", PASSWORD)
    app = create_app(sqlite_store)
    plain = sign_in(TestClient(app), "ann@venue.example")
    cookie = plain.headers["set-cookie"].lower()  # type: ignore[attr-defined]
    assert "calbridge_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie
    tls = sign_in(TestClient(app, base_url="https://admin.venue.example"), "ann@venue.example")
    assert "secure" in tls.headers["set-cookie"].lower()  # type: ignore[attr-defined]


def test_sign_in_never_redirects_to_another_site(sqlite_store: Store) -> None:
    with sqlite_store.session() as s:
        create_admin(s, "ann@venue.example", PASSWORD)
    client = TestClient(create_app(sqlite_store))
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"),
                             ("/bookings?q=a", "/bookings?q=a")):  # fmt: skip
        response = sign_in(client, "ann@venue.example", next_=target)
        assert response.headers["location"] == expected  # type: ignore[attr-defined]


def test_a_write_needs_the_admin_role_and_the_session_csrf_token(sqlite_store: Store) -> None:
    with sqlite_store.session() as s:
        create_admin(s, "ann@venue.example", PASSWORD)
        create_admin(s, "val@venue.example", PASSWORD, role="viewer")
    app = create_app(sqlite_store)
    admin, viewer = TestClient(app), TestClient(app)
    sign_in(admin, "ann@venue.example")
    sign_in(viewer, "val@venue.example")
    settings = {"default_account": "nobody", "virtual_assistant_user": "nobody", "csrf_token": ""}
    assert admin.post("/directory/settings", data=settings).status_code == 403
    settings["csrf_token"] = csrf_of(viewer.get("/directory").text)
    refused = viewer.post("/directory/settings", data=settings)
    assert refused.status_code == 403 and "viewer" in refused.text
    settings["csrf_token"] = csrf_of(admin.get("/directory").text)
    checked = admin.post("/directory/settings", data=settings)
    assert checked.status_code == 422  # got through to validation: nobody is not an account
    assert "<code>$.default_account</code>: unknown account" in checked.text
