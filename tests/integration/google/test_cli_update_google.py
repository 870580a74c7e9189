"""`calbridge calendars update NAME --service-account NEW_KEY.json` as an admin runs it after a
key rotation (issue 9 §2): the installed console script in a subprocess, against the Google
emulator with the real client libraries. The old key is revoked before the update, so the sync
after it can only succeed with the new key; the update keeps the calendar's links and sync
token, and nothing is created twice on either side."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from google_world import GoogleWorld, soon, timed

from calbridge_cli import Cli, make_cli, sync_one
from worlds import book

EMAIL = "tom@harbour.example"
ACCOUNT = "rotating@calbridge-tests.iam.gserviceaccount.com"


@pytest.fixture
def cli(world: GoogleWorld, tmp_path: Path) -> Cli:
    url = world.store.engine.url.render_as_string(hide_password=False)
    return make_cli(tmp_path / "data", url)


def _key(world: GoogleWorld, path: Path) -> tuple[Path, str]:
    """A new key of the service account, written as Google's JSON key file; and its id."""
    info = world.gcal.emulator.create_service_account(ACCOUNT)
    path.write_text(json.dumps(info), encoding="utf-8")
    return path, info["private_key_id"]


def test_a_new_key_through_the_cli_keeps_links_and_token_and_duplicates_nothing(
    world: GoogleWorld, cli: Cli, tmp_path: Path
) -> None:
    calendar_id = world.gcal.add_user(EMAIL)
    world.calendars["toms"] = calendar_id
    old_key, old_id = _key(world, tmp_path / "old.json")
    added = cli(
        "calendars", "add", "toms", "--google", calendar_id, "--service-account", str(old_key),
        "--subject", EMAIL, "--api-base", world.gcal.base_url, "--owner", "u-tom",
    )  # fmt: skip
    assert added.code == 0, added.err
    start = soon(3)
    world.insert("toms", {"summary": "Made in Google", **timed(start, start + timedelta(hours=1))})
    with world.store.session() as session:
        book(session, "Made in bookings", start, start + timedelta(hours=2))
    first = sync_one(cli)
    assert (first["ok"], first["created"], first["pushed_created"]) == (True, 1, 1), first

    new_key, _ = _key(world, tmp_path / "new.json")
    world.gcal.emulator.store.remove_service_account_key(ACCOUNT, old_id)  # the old key revoked
    updated = cli("calendars", "update", "toms", "--service-account", str(new_key), "--json")
    assert updated.code == 0, updated.err
    shown = updated.json()
    assert isinstance(shown, dict)
    assert (shown["links"], shown["token"]) == ({"ok": 2}, "set")

    again = sync_one(cli)
    assert again["ok"] is True, again
    assert (again["created"], again["pushed_created"], again["full_resync"]) == (0, 0, False)
    assert len(world.bookings()) == 2
    assert sorted(e["summary"] for e in world.live("toms")) == [
        "Made in Google",
        "Made in bookings",
    ]
