"""/api/directory and /api/settings: the CLI's all-or-nothing import with errors at their JSON
path, export as an exact round trip, settings validated at their path, search."""

from __future__ import annotations

import copy
import json
from typing import Any

from api_client import Api
from api_problem import problem


def test_import_reports_every_problem_at_its_json_path_and_writes_nothing(
    api: Api, example_directory: dict[str, Any]
) -> None:
    broken = copy.deepcopy(example_directory)
    broken["contacts"][1]["company"] = "co-missing"
    broken["contacts"][0]["primary_email"] = "not-an-address"
    broken["companies"].append({"id": "co-new", "name": "New Co"})
    before = api.get("/api/directory").json()
    body = problem(api.post("/api/directory/import", json=broken), 422)
    assert body["type"].endswith("validation-failed")
    paths = {e["path"]: e["message"] for e in body["errors"]}
    assert "unknown company 'co-missing'" in paths["$.contacts[1].company"]
    assert any(p.startswith("$.contacts[0]") for p in paths)
    assert "nothing was imported" in body["detail"]
    assert api.get("/api/directory").json() == before


def test_import_shape_errors_are_at_their_path_too(api: Api) -> None:
    body = problem(api.post("/api/directory/import", json={"companies": [{"id": 7}]}), 422)
    assert {e["path"] for e in body["errors"]} >= {"$.companies[0].id", "$.companies[0].name"}
    body = problem(api.post("/api/directory/import", json=[1, 2]), 422)
    assert body["errors"][0]["path"] == "$"


def test_import_then_export_round_trip(api: Api, example_directory: dict[str, Any]) -> None:
    changed = copy.deepcopy(example_directory)
    changed["companies"].append({"id": "co-new", "name": "New Co"})
    report = api.post("/api/directory/import", json=changed).json()
    assert report["created"]["companies"] == 1 and report["changed"] is True
    again = api.post("/api/directory/import", json=changed).json()
    assert again["changed"] is False
    assert api.get("/api/directory").json() == json.loads(json.dumps(changed))
    history = api.get("/api/history?subject=directory").json()["items"]
    assert [(h["action"], h["actor"]) for h in history] == [
        ("imported", "booking-site"),  # the second import changed nothing: not recorded
        ("imported", "test"),  # the fixture's
    ]


def test_settings_are_validated_at_their_path_and_nothing_changes(api: Api) -> None:
    before = api.get("/api/settings").json()
    assert before["default_account"] == "co-walkin" and before["problems"] == []
    body = problem(
        api.patch(
            "/api/settings", json={"default_account": "co-x", "virtual_assistant_user": "u-tom"}
        ),
        422,
    )
    paths = {e["path"] for e in body["errors"]}
    assert paths == {"$.default_account", "$.virtual_assistant_user"}
    problem(api.patch("/api/settings", json={"venue": "x"}), 422)
    assert api.get("/api/settings").json() == before


def test_settings_update_is_recorded(api: Api) -> None:
    response = api.patch(
        "/api/settings", json={"default_event_manager": "u-mia", "auto_assign_event_manager": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["default_event_manager"] == "u-mia"
    change = api.get("/api/history?subject=settings").json()["items"][0]
    assert change["actor"] == "booking-site"
    assert change["details"]["changes"]["default_event_manager"] == [None, "u-mia"]


def test_search_finds_people_by_name_id_or_address(api: Api) -> None:
    found = api.get("/api/directory/search?q=ann").json()["items"]
    assert ("contact", "ct-ann") in {(f["kind"], f["id"]) for f in found}
    by_mail = api.get("/api/directory/search?q=bookings@harb&kind=user").json()["items"]
    assert [f["id"] for f in by_mail] == ["u-mia"]
    assert api.get("/api/directory/search?q=100%25").json()["items"] == []


def test_shared_addresses_are_warnings_or_with_strict_problems(
    api: Api, example_directory: dict[str, Any]
) -> None:
    shared = copy.deepcopy(example_directory)
    shared["contacts"][1]["alternate_emails"] = ["ann.lee@acme.example"]
    body = problem(api.post("/api/directory/import?strict=true", json=shared), 422)
    assert any("ann.lee@acme.example" in e["message"] for e in body["errors"])
    report = api.post("/api/directory/import", json=shared).json()
    (warning,) = report["warnings"]
    assert warning["address"] == "ann.lee@acme.example" and warning["kind"] == "contacts"
