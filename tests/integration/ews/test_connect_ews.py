"""`calbridge calendars add NAME --ews MAILBOX ...` as an admin runs it (in-process CLI, the
emulator over real HTTP/HTTPS with real exchangelib): sign-in with Basic and NTLM, a service
account impersonating two mailboxes and refused a third, and a clear one-line error — no
traceback — for bad credentials, an unknown mailbox, no impersonation right, a server that is
not Exchange, a certificate that is not trusted and an autodiscover that finds no server.

Autodiscover (no ``--server``) that finds nothing is tested here, hermetically: exchangelib's
documented resolver settings (``Autodiscovery.DNS_RESOLVER_ATTRS``) point its DNS checks at a
local stub answering NXDOMAIN. A *successful* discovery (port 443, root) is in
``test_autodiscover_ews.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from calbridge.store.models import Calendar
from calbridge_cli import Cli, make_inprocess_cli
from calbridge_emulators.ews.server import EwsServer, running_emulator
from ews_autodiscover import stub_dns

World = Any  # conftest.EwsWorld
SECOND = "events@harbour.example"
REFUSED = "ceo@harbour.example"


@pytest.fixture
def cli(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("SVC_PASSWORD", "S3rvice!pw")
    monkeypatch.setenv("OWNER_PASSWORD", "B00kings!pw")
    monkeypatch.setenv("WRONG_PASSWORD", "nope")
    url = world.store.engine.url.render_as_string(hide_password=False)
    return make_inprocess_cli(tmp_path / "data", url)


def add(cli: Cli, world: World, name: str, mailbox: str, *extra: str) -> Any:
    return cli(
        "calendars", "add", name, "--ews", mailbox, "--server", world.server.ews_url,
        "--username", "HARBOUR\\svc-calbridge", "--password-env", "SVC_PASSWORD",
        "--auth", "basic", "--impersonate", *extra,
    )  # fmt: skip


def one_line(result: Any) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err + result.out
    lines = [
        line
        for line in result.err.splitlines()
        if line.strip() and not line.startswith("warning:")  # e.g. a password sent in clear
    ]
    assert len(lines) == 1, result.err
    return lines[0]


def test_service_account_impersonates_two_mailboxes_and_is_refused_a_third(
    world: World, cli: Cli
) -> None:
    world.org.add_mailbox(SECOND, "Events")
    world.org.add_mailbox(REFUSED, "Chief")
    world.org.accounts["svc-calbridge"].impersonates.add(SECOND)
    assert add(cli, world, "front", world.mailbox).code == 0
    assert add(cli, world, "events", SECOND).code == 0
    line = one_line(add(cli, world, "ceo", REFUSED))
    assert "may not impersonate 'ceo@harbour.example'" in line
    assert "ApplicationImpersonation" in line
    day = date.today() + timedelta(days=30)  # the CLI syncs with the real clock
    world.create("Front desk tour", f"{day}T09:00:00", f"{day}T10:00:00")
    world.org.external_create(SECOND, "Events kickoff", *_utc(f"{day}T11:00:00", f"{day}T12:00:00"))
    synced = cli("sync", "front", "events", "--json")
    assert synced.code == 0, synced.err
    assert [r["created"] for r in json.loads(synced.out)] == [1, 1]
    impersonated = {mailbox for op, mailbox in world.org.calls if op == "SyncFolderItems"}
    assert impersonated == {world.mailbox, SECOND}
    with world.store.session() as session:
        stored = session.scalars(select(Calendar).where(Calendar.name == "front")).one()
        assert "S3rvice" not in str(stored.settings) and "S3rvice" not in (stored.secret or "")
        assert stored.settings["build"] == "15.1.2507.6"  # learnt once: no version probe later
    shown = cli("calendars", "show", "front", "--json")
    assert shown.code == 0 and "S3rvice" not in shown.out
    details = json.loads(shown.out)
    assert (details["kind"], details["mailbox"], details["ews"]["impersonate"]) == (
        "ews",
        world.mailbox,
        True,
    )


def test_mailbox_own_account_with_ntlm(world: World, cli: Cli) -> None:
    handshakes = world.server.auth.ntlm_handshakes
    added = cli(
        "calendars", "add", "own", "--ews", world.mailbox, "--server", world.server.ews_url,
        "--username", "HARBOUR\\bookings", "--password-env", "OWNER_PASSWORD", "--auth", "ntlm",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert world.server.auth.ntlm_handshakes > handshakes
    day = date.today() + timedelta(days=30)
    world.create("Wine tasting", f"{day}T18:00:00", f"{day}T20:00:00")
    synced = cli("sync", "own", "--json")
    assert synced.code == 0, synced.err
    assert json.loads(synced.out)[0]["created"] == 1


def test_wrong_password_is_one_line_naming_the_fix(world: World, cli: Cli) -> None:
    for auth in ("basic", "ntlm"):
        result = cli(
            "calendars", "add", f"bad-{auth}", "--ews", world.mailbox,
            "--server", world.server.ews_url, "--username", "HARBOUR\\bookings",
            "--password-env", "WRONG_PASSWORD", "--auth", auth,
        )  # fmt: skip
        line = one_line(result)
        assert "refused the username or password of 'HARBOUR\\bookings'" in line, line
        assert "--password-env VAR" in line


def test_unknown_mailbox_is_one_line(world: World, cli: Cli) -> None:
    line = one_line(add(cli, world, "nobody", "nobody@harbour.example"))
    assert "there is no mailbox 'nobody@harbour.example'" in line


def test_own_account_without_rights_on_another_mailbox_is_told_to_impersonate(
    world: World, cli: Cli
) -> None:
    world.org.add_mailbox(SECOND, "Events")
    result = cli(
        "calendars", "add", "other", "--ews", SECOND, "--server", world.server.ews_url,
        "--username", "bookings", "--password-env", "OWNER_PASSWORD", "--auth", "basic",
    )  # fmt: skip
    line = one_line(result)
    assert "may not open the calendar of 'events@harbour.example'" in line
    assert "--impersonate" in line


def test_a_server_that_is_not_exchange_is_one_line(world: World, cli: Cli) -> None:
    not_ews = world.server.base_url + "/owa/"
    result = cli(
        "calendars", "add", "web", "--ews", world.mailbox, "--server", not_ews,
        "--username", "bookings", "--password-env", "OWNER_PASSWORD", "--auth", "basic",
    )  # fmt: skip
    line = one_line(result)
    assert "does not answer as Exchange Web Services" in line
    assert "/EWS/Exchange.asmx" in line


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EwsServer]:
    with running_emulator(
        tls=True, version="2019", tls_dir=tmp_path_factory.mktemp("tls")
    ) as server:
        server.org.add_account("bookings", "B00kings!pw", mailbox="bookings@harbour.example")
        yield server


def test_untrusted_certificate_is_one_line_and_ca_file_fixes_it(
    world: World, cli: Cli, tls_server: EwsServer
) -> None:
    base = (
        "calendars", "add", "tls", "--ews", "bookings@harbour.example",
        "--server", tls_server.ews_url, "--username", "bookings",
        "--password-env", "OWNER_PASSWORD", "--auth", "basic",
    )  # fmt: skip
    line = one_line(cli(*base))
    assert "certificate" in line and "--ca-file" in line
    assert tls_server.tls is not None
    added = cli(*base, "--ca-file", str(tls_server.tls.ca_path))
    assert added.code == 0, added.err
    with world.store.session() as session:
        stored = session.scalars(select(Calendar).where(Calendar.name == "tls")).one()
        assert stored.settings["build"].startswith("15.2.")  # Exchange 2019


def _utc(start: str, end: str) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )


def test_a_changed_password_fails_the_sync_naming_the_update_that_fixes_it(
    world: World, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = cli(
        "calendars", "add", "own", "--ews", world.mailbox, "--server", world.server.ews_url,
        "--username", "bookings", "--password-env", "OWNER_PASSWORD", "--auth", "basic",
    )  # fmt: skip
    assert added.code == 0, added.err
    world.org.accounts["bookings"].password = "Rotated!pw"
    failed = cli("sync", "own", "--json")
    assert failed.code != 0 and "Traceback" not in failed.err
    [report] = json.loads(failed.out)
    assert "calbridge calendars update own --password-env VAR" in report["error"]
    monkeypatch.setenv("ROTATED", "Rotated!pw")
    updated = cli("calendars", "update", "own", "--password-env", "ROTATED")
    assert updated.code == 0, updated.err
    synced = cli("sync", "own", "--json")
    assert synced.code == 0, synced.err


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """exchangelib's autodiscover DNS lookups answered NXDOMAIN by a local stub (and its
    on-disk autodiscover cache kept in the test's temp dir)."""
    from exchangelib.autodiscover import cache

    monkeypatch.setattr(cache, "AUTODISCOVER_PERSISTENT_STORAGE", tmp_path / "ad-cache")
    with stub_dns(monkeypatch, records={}):
        yield


def test_autodiscover_that_finds_no_server_is_one_line_telling_to_pass_server(
    world: World, cli: Cli, no_dns: None
) -> None:
    result = cli(
        "calendars", "add", "front", "--ews", "bookings@harbour.invalid",
        "--username", "HARBOUR\\svc-calbridge", "--password-env", "SVC_PASSWORD",
    )  # fmt: skip
    line = one_line(result)
    assert "autodiscover found no Exchange server for 'bookings@harbour.invalid'" in line
    assert "autodiscover.harbour.invalid" in line
    assert "--server URL" in line
    with world.store.session() as session:
        assert session.scalars(select(Calendar)).all() == []
