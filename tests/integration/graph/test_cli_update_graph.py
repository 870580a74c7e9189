"""`calbridge calendars update NAME --client-secret-env VAR` as an admin runs it after the app's
secret was rotated (issue 9 §2): the installed console script in a subprocess, against the
Graph emulator (over https, with MSAL). The sync with the revoked secret fails and names the
update; the update keeps the calendar's links and delta token, and nothing is created twice on
either side."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from calbridge.store.models import Event
from calbridge_cli import Cli, make_cli, sync_one
from worlds import book

GraphWorld = Any  # conftest.GraphWorld (conftest modules are not imported by name)


@pytest.fixture
def cli(world: GraphWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("OLD_SECRET", "secret-before-rotation")
    monkeypatch.setenv("NEW_SECRET", "secret-after-rotation")
    url = world.store.engine.url.render_as_string(hide_password=False)
    return make_cli(tmp_path / "data", url)


def test_a_rotated_secret_through_the_cli_keeps_links_and_token_and_duplicates_nothing(
    world: GraphWorld, cli: Cli
) -> None:
    graph = world.graph
    app = graph.add_app(graph.tenant_id, secret="secret-before-rotation")
    calendar = graph.add_calendar(world.mailbox, f"rotation-{app.client_id[:8]}")
    world.calendars["front"] = calendar.id
    added = cli(
        "calendars", "add", "front", "--graph", world.mailbox, "--tenant", graph.tenant_id,
        "--client-id", app.client_id, "--client-secret-env", "OLD_SECRET",
        "--calendar-id", calendar.id, "--api-base", graph.graph_url,
        "--login-base", graph.login_base, "--ca-file", str(graph.ca_cert_path),
        "--owner", "u-tom",
    )  # fmt: skip
    assert added.code == 0, added.err
    # the CLI syncs with the real clock: dates relative to today stay inside its window
    day = date.today() + timedelta(days=60)
    world.create("front", "Made in Outlook", f"{day}T09:00:00", f"{day}T10:00:00")
    with world.store.session() as session:
        book(session, "Made in bookings", f"{day}T13:00", f"{day}T15:00")
    first = sync_one(cli)
    assert (first["ok"], first["created"], first["pushed_created"]) == (True, 1, 1), first

    with graph.emulator.store.lock:
        app.secrets[:] = ["secret-after-rotation"]  # the old secret revoked
    # As in Entra ID, a token issued before the revocation stays good until it expires, and the
    # CLI keeps MSAL's token between runs: the next sync still works ...
    still = sync_one(cli)
    assert (still["ok"], still["created"], still["pushed_created"]) == (True, 0, 0), still
    # ... and once that token has expired, the old secret is refused and the error says what to do
    later = graph.emulator.auth.token_lifetime + 60
    graph.emulator.advance_clock(later)
    try:
        refused = sync_one(cli)
    finally:
        graph.emulator.advance_clock(-later)  # the emulator serves the other tests too
    assert refused["ok"] is False
    assert str(refused["error"]).endswith(
        "then run `calbridge calendars update front --client-secret-env VAR`"
    )

    updated = cli("calendars", "update", "front", "--client-secret-env", "NEW_SECRET", "--json")
    assert updated.code == 0, updated.err
    shown = updated.json()
    assert isinstance(shown, dict)
    assert (shown["links"], shown["token"]) == ({"ok": 2}, "set")

    again = sync_one(cli)
    assert again["ok"] is True, again
    assert (again["created"], again["pushed_created"], again["full_resync"]) == (0, 0, False)
    with world.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 2
    assert sorted(e["subject"] for e in world.events("front")) == [
        "Made in Outlook",
        "Made in bookings",
    ]
