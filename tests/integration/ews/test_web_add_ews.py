"""The admin UI links an Exchange Server calendar (EWS) like the others: a refused password is
shown with what to do and nothing is stored; the right one links the mailbox; its credentials
are a password on its page (the registry says so), replaced in place after a check."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from calbridge.service.app import create_app
from calbridge.store.models import Calendar
from calbridge.web.auth import create_admin
from calbridge_emulators.ews.server import EwsServer
from web_signin import csrf, sign_in
from worlds import example_store

ADMIN = ("admin@venue.example", "admin-password-1")


def test_an_exchange_calendar_is_added_from_the_admin_ui_after_its_test(
    ews_server: EwsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALBRIDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALBRIDGE_SECRET_KEY", "web-ews-tests-secret-key")
    ews_server.org.reset()
    ews_server.org.add_mailbox("bookings@harbour.example", "Harbour Bookings")
    ews_server.org.add_account("bookings", "B00kings!pw", mailbox="bookings@harbour.example")
    with example_store(tmp_path) as store:
        with store.session() as s:
            create_admin(s, *ADMIN)
        client = TestClient(create_app(store))
        sign_in(client, *ADMIN, next_page="/")
        form = client.get("/calendars/new?kind=ews")
        assert form.status_code == 200 and 'name="impersonate"' in form.text
        values = {
            "csrf_token": csrf(form.text),
            "kind": "ews",
            "name": "exchange",
            "mailbox": "bookings@harbour.example",
            "server": ews_server.ews_url,
            "username": "HARBOUR\\bookings",
            "auth": "basic",
        }
        refused = client.post("/calendars/new", data={**values, "password": "wrong"})
        assert refused.status_code == 422
        assert "Connection test failed" in refused.text and "wrong" not in refused.text
        with store.session() as s:
            assert s.scalars(select(Calendar)).all() == []

        added = client.post("/calendars/new", data={**values, "password": "B00kings!pw"})
        assert added.status_code in (200, 303), added.text[:500]
        with store.session() as s:
            (calendar,) = s.scalars(select(Calendar)).all()
            assert (calendar.name, calendar.kind) == ("exchange", "ews")
            assert "B00kings" not in str(calendar.settings)

        page = client.get(f"/calendars/{calendar.id}")
        assert 'name="password"' in page.text and 'name="service_account"' not in page.text
        token = csrf(page.text)
        ews_server.org.accounts["bookings"].password = "N3w!pw"  # changed in Active Directory
        kept = client.post(
            f"/calendars/{calendar.id}/credentials",
            data={"csrf_token": token, "password": "still-wrong"},
        )
        assert "Not changed" in kept.text and "still-wrong" not in kept.text
        changed = client.post(
            f"/calendars/{calendar.id}/credentials",
            data={"csrf_token": token, "password": "N3w!pw"},
        )
        assert "Credentials of &#39;exchange&#39; updated" in changed.text, changed.text[-800:]
