"""Signing an admin in to the web app through its own login form, for the integration tests
that drive pages with Starlette's ``TestClient`` (the browser tests use ``e2e/web``)."""

from __future__ import annotations

import re
from typing import Any


def csrf(page: str) -> str:
    """The CSRF token carried by a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def sign_in(client: Any, email: str, password: str, next_page: str | None = None) -> None:
    """Post the login form as a person would: the form's own CSRF token, and ``next``."""
    form = {"email": email, "password": password, "csrf_token": csrf(client.get("/login").text)}
    if next_page is not None:
        form["next"] = next_page
    client.post("/login", data=form)
