"""The admin UI's *Add a calendar* form is built from each kind's REST API connection model:
every kind's page shows one labelled input per field, refuses what the API would refuse with
the field's label, and never renders a secret back."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from calbridge.errors import ValidationFailed
from calbridge.service.app import create_app
from calbridge.store.models import Calendar
from calbridge.web.auth import create_admin
from calbridge.web.calendar_form import connection_from_form, form_fields, form_kinds
from web_signin import csrf, sign_in
from worlds import example_store

ADMIN = ("admin@venue.example", "admin-password-1")
SECRET = "s3cret-N0t-To-Show"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, object]]:
    monkeypatch.setenv("CALBRIDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALBRIDGE_SECRET_KEY", "web-form-tests-secret-key")
    with example_store(tmp_path) as store:
        with store.session() as s:
            create_admin(s, *ADMIN)
        web = TestClient(create_app(store))
        sign_in(web, *ADMIN, next_page="/")
        yield web, store


def test_every_kind_with_an_api_model_gets_a_form_with_each_field_labelled(
    client: tuple[TestClient, object],
) -> None:
    web, _store = client
    kinds = {entry.name for entry in form_kinds()}
    assert kinds == {"caldav", "google", "graph", "ews"}
    for entry in form_kinds():
        assert entry.api_connection is not None
        page = web.get(f"/calendars/new?kind={entry.name}")
        assert page.status_code == 200
        text = html.unescape(page.text)
        for field in form_fields(entry.api_connection):
            assert f'name="{field.name}"' in text, (entry.name, field.name)
            assert field.label in text, (entry.name, field.label)
        assert f'value="{entry.name}"' in page.text  # the hidden kind


def test_a_refused_form_names_the_field_and_never_renders_a_secret_back(
    client: tuple[TestClient, object],
) -> None:
    web, store = client
    form = web.get("/calendars/new?kind=graph")
    refused = web.post(
        "/calendars/new",
        data={
            "csrf_token": csrf(form.text),
            "kind": "graph",
            "name": "m365",
            "mailbox": "bookings@harbour.example",
            "tenant": "contoso",
            "client_id": "app-1",
            "client_secret": SECRET,
            "certificate_pem": SECRET,  # both: the API model refuses it
            "action": "add",
        },
    )
    assert refused.status_code == 422
    assert "exactly one of client_secret or certificate_pem" in refused.text
    assert SECRET not in refused.text
    assert 'value="bookings@harbour.example"' in refused.text  # what is not secret stays
    with store.session() as s:  # type: ignore[attr-defined]
        assert s.scalars(select(Calendar)).all() == []


def test_form_values_become_the_model_checkbox_select_and_json_included() -> None:
    ews = connection_from_form(
        "ews",
        {"mailbox": "a@b.example", "username": "HARBOUR\\a", "password": "pw",
         "auth": "basic", "impersonate": "on", "server": ""},
    )  # fmt: skip
    assert ews.values() == {
        "ews": "a@b.example", "username": "HARBOUR\\a", "password": "pw",
        "auth": "basic", "impersonate": True,
    }  # fmt: skip
    with pytest.raises(ValidationFailed, match="Sign-in method: Input should be 'ntlm' or"):
        connection_from_form(
            "ews", {"mailbox": "a@b.example", "username": "u", "password": "p", "auth": "x"}
        )
    with pytest.raises(ValidationFailed, match=r"User name \(DOMAIN.*is required"):
        connection_from_form("ews", {"mailbox": "a@b.example", "password": "p"})
    with pytest.raises(ValidationFailed, match=r"OAuth client file .* is not JSON"):
        connection_from_form("google", {"calendar_id": "c", "oauth_client": "{not json"})
    google = connection_from_form("google", {"calendar_id": "c", "oauth_client": '{"web": {}}'})
    assert google.values()["oauth_client"] == {"web": {}}
    with pytest.raises(ValidationFailed, match="not a kind of calendar"):
        connection_from_form("carrier-pigeon", {})
