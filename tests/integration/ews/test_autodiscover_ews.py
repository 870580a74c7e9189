"""Autodiscover that succeeds: `calbridge calendars add NAME --ews MAILBOX` without ``--server``
finds the EWS URL through the emulator's SOAP Autodiscover service, stores it, and syncs.

The end-to-end tests (``tests/ews_autodiscover.py`` explains the set-up) run the emulator's TLS
listener on 127.0.0.1:443, use the mailbox ``bookings@localhost`` with a stub DNS answering
``localhost.`` A 127.0.0.1; another keeps a real-looking domain (``venue@harbour.example``,
whose hosts do not resolve) and finds the server through the
``_autodiscover._tcp.harbour.example`` SRV record (step 4) pointing at ``localhost`` port 443.
They skip, saying why, when port 443 cannot be bound (not root, or another run has it).

The emulator's ``GetUserSettings`` answer itself is checked without root, over plain HTTP on a
free port: exchangelib parses it with no fallback and no warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from calbridge.store.models import Calendar
from calbridge_cli import Cli, make_inprocess_cli
from calbridge_emulators.ews.server import EwsServer, running_emulator
from calbridge_emulators.ews.store import Organizer
from ews_autodiscover import DISCOVERED, private_cache, serve_on_443, stub_dns

World = Any  # conftest.EwsWorld
MAILBOX = "bookings@localhost"
OWNER = ("bookings", "B00kings!pw")
AD_PATH = "/autodiscover/autodiscover.svc"


@pytest.fixture
def ad_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with private_cache(tmp_path, monkeypatch):
        yield


# ------------------------------------------------------------ the answer, parsed by exchangelib


def test_get_user_settings_is_parsed_by_exchangelib_without_fallback_or_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from exchangelib import Configuration, Credentials
    from exchangelib.autodiscover.protocol import AutodiscoverProtocol
    from exchangelib.errors import ErrorNonExistentMailbox
    from exchangelib.protocol import FailFast
    from exchangelib.transport import NTLM

    with running_emulator() as server:
        server.org.add_mailbox("bookings@harbour.example", "Harbour Bookings")
        server.org.add_account(*OWNER, mailbox="bookings@harbour.example")
        probe = requests.post(server.base_url + AD_PATH, data=b"", timeout=10)
        assert probe.status_code == 401  # a client's unauthenticated probe: the offers
        assert {"NTLM", "Negotiate"} <= set(probe.headers["WWW-Authenticate"].split(", ")[:2])
        assert requests.head(server.base_url + AD_PATH, timeout=10).status_code == 401
        protocol = AutodiscoverProtocol(
            config=Configuration(
                service_endpoint=server.base_url + AD_PATH,
                credentials=Credentials(*OWNER),
                retry_policy=FailFast(),
            )
        )
        with caplog.at_level(logging.WARNING, logger="exchangelib"):
            found = protocol.get_user_settings(user="bookings@harbour.example")
            found.raise_errors()  # only harmless SettingIsNotAvailable for unserved settings
            missing = protocol.get_user_settings(user="nobody@harbour.example")
        assert protocol.auth_type == NTLM  # detected from the 401's offers
        assert found.ews_url == server.ews_url
        assert found.autodiscover_smtp_address == "bookings@harbour.example"
        assert found.user_settings["user_display_name"] == "Harbour Bookings"
        assert found.version is not None and found.version.api_version == "Exchange2016"
        assert {code for code, _ in found.user_settings_errors.values()} == {
            "SettingIsNotAvailable"
        }
        assert missing.error_code == "InvalidUser"
        with pytest.raises(ErrorNonExistentMailbox):
            missing.raise_errors()
        assert [r.getMessage() for r in caplog.records if r.name.startswith("exchangelib")] == []
        assert ("GetUserSettings", "bookings@harbour.example") in server.org.calls


# ------------------------------------------------------------ end to end on port 443


@pytest.fixture(scope="module")
def port_443(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EwsServer]:
    with serve_on_443(tmp_path_factory.mktemp("ad-tls")) as server:
        yield server


@pytest.fixture
def ad_server(port_443: EwsServer) -> EwsServer:
    org = port_443.org
    org.reset()
    org.add_mailbox(MAILBOX, "Localhost Bookings")
    org.add_account(*OWNER, mailbox=MAILBOX)
    return port_443


@pytest.fixture
def localhost_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    with stub_dns(monkeypatch) as asked:
        yield asked


@pytest.fixture
def cli(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("OWNER_PASSWORD", OWNER[1])
    url = world.store.engine.url.render_as_string(hide_password=False)
    return make_inprocess_cli(tmp_path / "data", url)


def _add(cli: Cli, *extra: str, mailbox: str = MAILBOX, name: str = "front") -> Any:
    return cli(
        "calendars", "add", name, "--ews", mailbox, "--username", OWNER[0],
        "--password-env", "OWNER_PASSWORD", *extra,
    )  # fmt: skip


def _add_impersonated(cli: Cli, server: EwsServer, mailbox: str, name: str = "front") -> Any:
    """A new room mailbox on the server, added as calendar ``name`` through the owner's
    impersonation right, trusting the server's test CA."""
    server.org.add_mailbox(mailbox, mailbox.split("@")[0].title())
    server.org.accounts[OWNER[0]].impersonates.add(mailbox)
    assert server.tls is not None
    return _add(
        cli, "--ca-file", str(server.tls.ca_path), "--impersonate", mailbox=mailbox, name=name
    )


def test_add_without_server_discovers_the_ews_url_stores_it_and_syncs(
    world: World,
    cli: Cli,
    ad_server: EwsServer,
    localhost_dns: list[str],
    ad_cache: None,
) -> None:
    assert ad_server.tls is not None
    added = _add(cli, "--ca-file", str(ad_server.tls.ca_path))
    assert added.code == 0, added.err
    assert "localhost. A" in localhost_dns  # exchangelib's host check went to the stub
    assert ("GetUserSettings", MAILBOX) in ad_server.org.calls
    discovered = DISCOVERED
    shown = cli("calendars", "show", "front", "--json")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["ews"]["server"] == discovered
    with world.store.session() as session:
        stored = session.scalars(select(Calendar).where(Calendar.name == "front")).one()
        assert stored.settings["server"] == discovered
        assert stored.settings["build"].startswith("15.2.")  # the emulated Exchange 2019
    day = date.today() + timedelta(days=30)  # the CLI syncs with the real clock
    ad_server.org.external_create(  # organized by Mia, a person the directory knows
        MAILBOX,
        "Discovered kickoff",
        *_utc(f"{day}T09:00:00", f"{day}T10:00:00"),
        organizer=Organizer("Mia Stone", "mia@harbour.example"),
    )
    ad_server.org.calls.clear()
    synced = cli("sync", "front", "--json")
    assert synced.code == 0, synced.err
    assert [r["created"] for r in json.loads(synced.out)] == [1], synced.out
    operations = [operation for operation, _ in ad_server.org.calls]
    assert "GetUserSettings" not in operations  # later runs go straight to the stored URL
    assert "SyncFolderItems" in operations


def test_add_finds_the_server_through_the_domains_srv_record(
    world: World,
    cli: Cli,
    ad_server: EwsServer,
    localhost_dns: list[str],
    ad_cache: None,
) -> None:
    added = _add_impersonated(cli, ad_server, "venue@harbour.example")
    assert added.code == 0, added.err
    # steps 1-3 found no host; step 4's SRV record named localhost:443
    assert {"harbour.example. A", "autodiscover.harbour.example. A"} <= set(localhost_dns)
    assert "_autodiscover._tcp.harbour.example. SRV" in localhost_dns
    assert ("GetUserSettings", "venue@harbour.example") in ad_server.org.calls
    shown = json.loads(cli("calendars", "show", "front", "--json").out)
    assert shown["ews"]["server"] == DISCOVERED


def test_autodiscover_needs_the_ca_file_of_a_private_ca_and_says_so_in_one_line(
    world: World,
    cli: Cli,
    ad_server: EwsServer,
    localhost_dns: list[str],
    ad_cache: None,
) -> None:
    # another calendar's CA file on the same server is not this calendar's trust
    trusted = _add_impersonated(cli, ad_server, "events@localhost", name="events")
    assert trusted.code == 0, trusted.err
    ad_server.org.calls.clear()
    result = _add(cli)
    assert result.code != 0
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "autodiscover found no Exchange server for 'bookings@localhost'" in lines[0]
    assert "--ca-file" in lines[0]
    assert ("GetUserSettings", MAILBOX) not in ad_server.org.calls  # TLS refused first
    with world.store.session() as session:
        assert session.scalars(select(Calendar.name)).all() == ["events"]


def _utc(start: str, end: str) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
