"""/api/calendars against a real Radicale: the connection is checked before anything is
stored (wrong password, unreachable server: a problem, nothing written), credentials are
replaced in place, nothing secret is ever answered, and sync control goes through the queue.
Microsoft 365 and Exchange (EWS) calendars on their emulators: the connection models come from
the provider registry, so a kind is in the API once it is registered."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from api_client import Api
from api_problem import problem

from calbridge_emulators.ews.server import EwsServer
from calbridge_emulators.ews.server import running_emulator as running_ews
from calbridge_emulators.graph.testing import (
    GraphEmulatorHandle,
    make_client_certificate,
    running_emulator,
)
from calbridge_emulators.radicale import RadicaleServer

_names = itertools.count(1)


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Nothing here depends on the database: SQLite only (the other API tests run on both)."""
    return sqlite_url


def caldav(radicale: RadicaleServer, password: str = "ann-secret", **extra: Any) -> dict[str, Any]:
    url = radicale.make_calendar("ann", f"api{next(_names)}")
    return {
        "name": "sales",
        "connection": {"kind": "caldav", "url": url, "username": "ann", "password": password},
        **extra,
    }


def test_wrong_password_is_refused_and_nothing_is_stored(
    api: Api, radicale: RadicaleServer
) -> None:
    history = api.count("history")
    body = problem(api.post("/api/calendars", json=caldav(radicale, "wrong-pw")), 422)
    assert body["type"].endswith("calendar-refused-credentials")
    assert "wrong-pw" not in str(body)
    assert api.count("calendars") == 0 and api.count("history") == history


def test_unreachable_server_is_a_502_problem(api: Api) -> None:
    body = {
        "name": "gone",
        "connection": {
            "kind": "caldav",
            "url": "http://127.0.0.1:9/cal/",
            "username": "u",
            "password": "p",
        },
    }
    problem(api.post("/api/calendars", json=body), 502)
    assert api.count("calendars") == 0


def test_connection_test_writes_nothing(api: Api, radicale: RadicaleServer) -> None:
    response = api.post("/api/calendars/test", json=caldav(radicale))
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert api.count("calendars") == 0
    problem(api.post("/api/calendars/test", json=caldav(radicale, "nope")), 422)


def test_add_lists_the_state_and_never_a_secret(api: Api, radicale: RadicaleServer) -> None:
    response = api.post("/api/calendars", json=caldav(radicale, owner="u-mia"))
    assert response.status_code == 201, response.text
    added = response.json()
    assert (added["name"], added["kind"], added["state"], added["owner"]) == (
        "sales",
        "caldav",
        "ok",
        "u-mia",
    )
    assert api.jobs.depth() == 1  # the first sync is queued
    listing = api.get("/api/calendars", headers=api.reader)
    assert [c["name"] for c in listing.json()["items"]] == ["sales"]
    for text in (
        response.text,
        listing.text,
        api.get("/api/calendars/sales").text,
        api.get("/api/history").text,
    ):
        assert "ann-secret" not in text
    problem(api.post("/api/calendars", json=caldav(radicale)), 409)  # the name is taken
    problem(api.post("/api/calendars", json=caldav(radicale), headers=api.reader), 403)


def test_credentials_are_checked_then_replaced_in_place(api: Api, radicale: RadicaleServer) -> None:
    api.post("/api/calendars", json=caldav(radicale))
    problem(api.put("/api/calendars/sales/credentials", json={"password": "wrong"}), 422)
    assert api.post("/api/calendars/sales/test").json()["ok"] is True  # old secret kept
    problem(api.put("/api/calendars/sales/credentials", json={"client_secret": "x"}), 409)
    problem(api.put("/api/calendars/sales/credentials", json={"username": "ann"}), 409)
    moved = api.patch("/api/calendars/sales", json={"policy": "calendar-wins", "owner": "u-tom"})
    assert (moved.json()["policy"], moved.json()["owner"]) == ("calendar-wins", "u-tom")
    ok = api.put("/api/calendars/sales/credentials", json={"password": "ann-secret"})
    assert ok.status_code == 200, ok.text
    changes = api.get("/api/history?subject=calendar").json()["items"]
    assert [(c["action"], c["details"]["fields"]) for c in changes[:2]] == [
        ("updated", ["password"]),
        ("updated", ["owner", "policy"]),
    ]
    assert "ann-secret" not in str(changes)


def test_pause_resume_and_sync_now(api: Api) -> None:
    api.add_calendar("sales")
    paused = api.post("/api/calendars/sales/pause").json()
    assert paused["paused"] is True and paused["state"] == "paused"
    assert "resume it first" in problem(api.post("/api/calendars/sales/sync"), 409)["detail"]
    assert api.jobs.depth() == 0
    assert api.post("/api/calendars/sales/resume").json()["paused"] is False
    assert api.post("/api/calendars/sales/sync").status_code == 200
    assert api.jobs.depth() == 1
    problem(api.post("/api/calendars/nope/sync"), 404)
    problem(api.post("/api/calendars/sales/explode"), 422)


def test_remove_forgets_links_and_keeps_bookings(api: Api) -> None:
    api.add_calendar("sales")
    booking = {
        "name": "Launch",
        "start": "2027-05-05T10:00:00Z",
        "end": "2027-05-05T11:00:00Z",
        "booker": "ann.lee@acme.example",
        "calendars": ["sales"],
    }
    event_id = api.post("/api/bookings", json=booking).json()["id"]
    removed = api.delete("/api/calendars/sales").json()
    assert removed["links_kept_for_relinking"] == 1
    assert api.get(f"/api/bookings/{event_id}").json()["links"] == []
    problem(api.get("/api/calendars/sales"), 404)


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphEmulatorHandle]:
    with running_emulator(tls=True) as handle:
        handle.add_user(handle.tenant_id, "bookings@harbour.example", "Harbour Bookings")
        yield handle


def test_a_microsoft_365_calendar_is_added_with_a_certificate_and_it_is_never_answered(
    api: Api, graph: GraphEmulatorHandle
) -> None:
    cert = make_client_certificate()
    app = graph.add_app(graph.tenant_id, certificate_pem=cert.certificate_pem)
    pem = cert.private_key_pem + cert.certificate_pem
    connection = {
        "kind": "graph",
        "mailbox": "bookings@harbour.example",
        "tenant": graph.tenant_id,
        "client_id": app.client_id,
        "api_base": graph.graph_url,
        "login_base": graph.login_base,
        "ca_file": str(graph.ca_cert_path),
    }
    both = {**connection, "client_secret": "s3cret", "certificate_pem": pem}
    for wrong in (connection, both):
        refused = problem(api.post("/api/calendars", json={"name": "m", "connection": wrong}), 422)
        assert "exactly one of client_secret or certificate_pem" in str(refused)
        assert "PRIVATE KEY" not in str(refused)
    added = api.post(
        "/api/calendars",
        json={"name": "m365", "connection": {**connection, "certificate_pem": pem}},
    )
    assert added.status_code == 201, added.text
    assert added.json()["kind"] == "graph" and "PRIVATE KEY" not in added.text
    listed = api.get("/api/calendars")
    assert "PRIVATE KEY" not in listed.text and "m365" in listed.text
    assert api.post("/api/calendars/m365/test").json()["ok"] is True


@pytest.fixture(scope="module")
def ews() -> Iterator[EwsServer]:
    with running_ews() as server:
        server.org.add_mailbox("bookings@harbour.example", "Harbour Bookings")
        server.org.add_account(
            "svc-calbridge", "S3rvice!pw", impersonates=("bookings@harbour.example",)
        )
        yield server


def test_an_exchange_calendar_is_added_checked_and_its_password_replaced(
    api: Api, ews: EwsServer
) -> None:
    connection = {
        "kind": "ews",
        "mailbox": "bookings@harbour.example",
        "username": "HARBOUR\\svc-calbridge",
        "server": ews.ews_url,
        "auth": "basic",
        "impersonate": True,
    }
    unknown = {**connection, "auth": "kerberos", "password": "S3rvice!pw"}
    assert "auth" in str(
        problem(api.post("/api/calendars", json={"name": "x", "connection": unknown}), 422)
    )
    wrong = {**connection, "password": "wrong-pw"}
    body = problem(api.post("/api/calendars", json={"name": "exchange", "connection": wrong}), 422)
    assert "wrong-pw" not in str(body) and api.count("calendars") == 0
    right = {**connection, "password": "S3rvice!pw"}
    added = api.post("/api/calendars", json={"name": "exchange", "connection": right})
    assert added.status_code == 201, added.text
    assert added.json()["kind"] == "ews" and "S3rvice" not in added.text
    assert added.json()["where"] == "bookings@harbour.example"
    problem(api.put("/api/calendars/exchange/credentials", json={"password": "wrong"}), 422)
    ews.org.accounts["svc-calbridge"].password = "N3w!pw"
    ok = api.put("/api/calendars/exchange/credentials", json={"password": "N3w!pw"})
    assert ok.status_code == 200, ok.text
    assert api.post("/api/calendars/exchange/test").json()["ok"] is True

    # its connection settings change through PATCH with the names it was added with
    moved = api.patch("/api/calendars/exchange", json={"server": ews.base_url + "/nowhere.asmx"})
    assert "does not answer as Exchange" in problem(moved, 409)["detail"]
    shown = api.get("/api/calendars/exchange").json()
    assert shown["connection"]["server"] == ews.ews_url  # refused by the check: nothing kept
    assert shown["username"] == "HARBOUR\\svc-calbridge" and "N3w" not in str(shown)
    ntlm = api.patch("/api/calendars/exchange", json={"auth": "ntlm"})
    assert ntlm.status_code == 200, ntlm.text
    assert ntlm.json()["connection"]["auth"] == "ntlm"
    assert api.post("/api/calendars/exchange/test").json()["ok"] is True
    foreign = problem(api.patch("/api/calendars/exchange", json={"tenant": "contoso"}), 409)
    assert "--tenant" in foreign["detail"]


def test_export_mode_filters_and_rooms_are_set_and_checked(
    api: Api, radicale: RadicaleServer
) -> None:
    two_way_days = caldav(radicale, assistant={"export": "days"})
    body = problem(api.post("/api/calendars", json=two_way_days), 409)
    assert "publish-only" in body["detail"] and api.count("calendars") == 0
    feed = caldav(
        radicale,
        direction="push",
        assistant={
            "export": "days",
            "title_template": "{event_name} ({client})",
            "filters": {"locations": ["loc-ballroom"], "statuses": ["confirmed"]},
        },
    )
    created = api.post("/api/calendars", json=feed)
    assert created.status_code == 201, created.text
    assert created.json()["assistant"] == {
        "export": "days",
        "rooms_as_resources": False,
        "title_template": "{event_name} ({client})",
        "filters": {"locations": ["loc-ballroom"], "statuses": ["confirmed"]},
        "room": None,
    }
    unknown = api.patch(
        "/api/calendars/sales", json={"assistant": {"filters": {"locations": ["x"]}}}
    )
    assert "no location has id 'x'" in problem(unknown, 404)["detail"]
    bad_title = api.patch("/api/calendars/sales", json={"assistant": {"title_template": "{nope}"}})
    assert "unknown merge field '{nope}'" in problem(bad_title, 409)["detail"]
    changed = api.patch(
        "/api/calendars/sales",
        json={"assistant": {"export": "event", "filters": {}, "room": "loc-garden"}},
    ).json()
    assert changed["assistant"]["export"] == "event" and changed["assistant"]["filters"] == {}
    assert changed["assistant"]["room"] == "loc-garden"
