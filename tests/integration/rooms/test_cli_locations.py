"""``calbridge locations list|double-bookings`` and ``events create --location … --location
ROOM@START/END``, ``events book-location``, ``events unbook-location`` (the CLI in process)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from calbridge_cli import Cli, make_inprocess_cli

DAY = (date.today() + timedelta(days=30)).isoformat()


@pytest.fixture
def cli(tmp_path: Path, sqlite_url: str) -> Cli:
    return make_inprocess_cli(tmp_path / "data", sqlite_url)


def test_rooms_are_booked_flagged_and_freed_from_the_command_line(
    cli: Cli, example_directory_text: str, tmp_path: Path
) -> None:
    directory = tmp_path / "directory.json"
    directory.write_text(example_directory_text)
    assert cli("directory", "import", str(directory)).code == 0
    listed = cli("locations", "list")
    assert listed.code == 0
    assert (
        "loc-ballroom\tBallroom\t300\tyes\tballroom@harbour.example\tGrand Ballroom" in listed.out
    )
    gala = cli(
        "events", "create", "--name", "Gala", "--start", f"{DAY}T18:00", "--end",
        f"{DAY}T23:00", "--booker", "ann.lee@acme.example", "--location", "loc-ballroom",
        "--location", f"Garden@{DAY}T17:00/{DAY}T19:00", "--json",
    )  # fmt: skip
    assert gala.code == 0, gala.err
    booked = gala.json()["booked_locations"]  # type: ignore[index]
    assert [b["location"]["id"] for b in booked] == ["loc-ballroom", "loc-garden"]
    assert booked[1]["start"].startswith(f"{DAY}T17:00")
    talk = cli(
        "events", "create", "--name", "Talk", "--start", f"{DAY}T20:00", "--end",
        f"{DAY}T21:00", "--booker", "ann.lee@acme.example", "--json",
    )  # fmt: skip
    talk_id = str(talk.json()["id"])  # type: ignore[index]
    clash = cli("events", "book-location", talk_id, "--location", "grand  ballroom")
    assert clash.code == 0, clash.err
    assert "double booking: room 'Ballroom' (loc-ballroom) is also booked by booking" in clash.out
    doubles = cli("locations", "double-bookings")
    assert doubles.out.count("Ballroom\t") == 2
    freed = cli("events", "unbook-location", talk_id, "--location", "Ballroom")
    assert freed.code == 0 and "confirmed" in freed.out
    assert cli("locations", "double-bookings").out.strip() == "no double bookings"
    wrong = cli("events", "unbook-location", talk_id, "--location", "Cellar")
    assert (
        wrong.code != 0 and wrong.err.startswith("error: booking") and "Traceback" not in wrong.err
    )


def test_bad_assistant_options_are_one_line_errors_before_anything_is_stored(
    cli: Cli, example_directory_text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "directory.json"
    directory.write_text(example_directory_text)
    assert cli("directory", "import", str(directory)).code == 0
    monkeypatch.setenv("CAL_PW", "secret")
    base = ("calendars", "add", "x", "--caldav", "http://127.0.0.1:9/", "--username", "a")
    cases = {
        ("--export", "days"): "--export days is publish-only",
        ("--direction", "push", "--title", "{nope}"): "unknown merge field '{nope}'",
        ("--only-location", "loc-cellar"): "no location has id 'loc-cellar'",
        ("--only-status", "weird"): "--only-status: 'weird' is not one of",
        ("--export", "event", "--direction", "push", "--rooms-as-resources"): "only with --export",
    }
    for options, message in cases.items():
        refused = cli(*base, "--password-env", "CAL_PW", *options)
        assert refused.code != 0 and message in refused.err, (options, refused.err)
        assert refused.err.count("\n") == 1 and "Traceback" not in refused.err
    assert cli("calendars", "list", "--json").json() == []
