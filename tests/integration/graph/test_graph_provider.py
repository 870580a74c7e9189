"""The Graph provider on its own, over https against the emulator with real MSAL: connecting
(and the messages when it cannot), throttling, idempotent creates, ``$batch`` results, time-zone
names, and change notifications."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.domain.remote import EventFields, RemoteEvent, RemoteItem, RemoteRef, Window, WriteOp
from calbridge.errors import ConfigError, Conflict, ProviderAuthError, ProviderError
from calbridge.providers.graph.mapping import graph_zone, iana_zone
from calbridge.providers.graph.notify import (
    handle_graph_notification,
    renew_subscriptions,
    subscribe_calendar,
    unsubscribe_calendar,
)
from calbridge.providers.graph.subscriptions import validation_response
from calbridge.providers.retry import RetryPolicy
from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.sync.calendars import add_graph_calendar
from calbridge_emulators.graph.testing import NotificationReceiver, make_client_certificate
from worlds import EXAMPLE

World = Any  # conftest.GraphWorld
WINDOW = Window(datetime(2026, 10, 1), datetime(2027, 12, 31))


def fields(
    name: str, start: str = "2027-03-01T09:00", end: str = "2027-03-01T10:00"
) -> EventFields:
    return EventFields(name, make_times(start, end, all_day=False, timezone="Europe/Berlin"))


def link(world: World, name: str, **overrides: Any) -> Calendar:
    """Add a Graph calendar with the emulator's app, overriding some of its options."""
    calendar = world.graph.add_calendar(world.mailbox, f"{name}-{uuid.uuid4().hex[:6]}")
    options: dict[str, Any] = {
        "tenant": world.graph.tenant_id,
        "client_id": world.graph.client_id,
        "client_secret": world.graph.client_secret,
        "calendar_id": calendar.id,
        "api_base": world.graph.graph_url,
        "login_base": world.graph.login_base,
        "ca_file": str(world.graph.ca_cert_path),
    }
    options.update(overrides)
    mailbox = options.pop("mailbox", world.mailbox)
    with world.store.session() as session:
        return add_graph_calendar(session, world.box, name, mailbox, **options)


# --------------------------------------------------------------------- connecting


def test_wrong_secret_says_so_and_what_to_do(world: World) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        link(world, "front", client_secret="not-the-secret")
    message = str(caught.value)
    assert "calendar 'front' (Microsoft 365)" in message and "refused the client secret" in message
    assert "AADSTS7000215" in message and "--client-secret-env" in message


def test_mailbox_the_app_may_not_read_says_so(world: World) -> None:
    app = world.graph.add_app(world.graph.tenant_id, secret="s3cret", mailboxes=["someone@else"])
    with pytest.raises(ProviderAuthError) as caught:
        link(world, "front", client_id=app.client_id, client_secret="s3cret", calendar_id=None)
    message = str(caught.value)
    assert f"may not access mailbox '{world.mailbox}'" in message
    assert "Calendars.ReadWrite" in message and "application access policy" in message


def test_unknown_calendar_names_the_mailbox_calendars(world: World) -> None:
    with pytest.raises(ConfigError) as caught:
        link(world, "front", calendar_id="AAMkAnope=")
    message = str(caught.value)
    assert "has no calendar with id 'AAMkAnope='" in message
    assert "'Calendar' (--calendar-id " in message and "Omit --calendar-id" in message


def test_unknown_mailbox_and_tenant_say_so(world: World) -> None:
    with pytest.raises(ConfigError, match=r"there is no mailbox 'nobody@harbour\.example'"):
        link(world, "front", mailbox="nobody@harbour.example", calendar_id=None)
    with pytest.raises(ConfigError, match=r"tenant 'nosuch\.onmicrosoft\.com'"):
        link(world, "other", tenant="nosuch.onmicrosoft.com")


def test_certificate_sign_in_and_secrets_sealed(world: World) -> None:
    cert = make_client_certificate()
    app = world.graph.add_app(world.graph.tenant_id, certificate_pem=cert.certificate_pem)
    pem = cert.private_key_pem + cert.certificate_pem
    calendar = link(
        world, "front", client_id=app.client_id, client_secret=None, certificate_pem=pem
    )
    assert "certificate_pem" not in json.dumps(calendar.settings)
    assert "PRIVATE KEY" not in (calendar.secret or "")  # sealed
    with pytest.raises(ConfigError, match="private key and the certificate"):
        link(world, "other", client_secret=None, certificate_pem=cert.certificate_pem)


# --------------------------------------------------------------------- reading & writing


def test_throttling_waits_as_long_as_retry_after_asks(world: World) -> None:
    world.add_calendar("front")
    waits: list[float] = []
    provider = world.provider("front", retry=RetryPolicy(attempts=4, sleep=waits.append))
    world.graph.fail_next(2, status=429, path="calendarView/delta", retry_after=3)
    pages = list(provider.list_changes(None, WINDOW))
    assert pages[-1].done and pages[-1].token
    assert waits == [3.0, 3.0]
    waits.clear()
    world.graph.fail_next(1, status=503, method="POST", scope="inner", retry_after=2)
    results = provider.write_many(
        [WriteOp("create", event=RemoteEvent(fields(f"E{i}"), key=f"cbk{i}")) for i in range(3)]
    )
    assert waits == [2.0]  # only the throttled request was sent again, after 2 s
    assert all(not isinstance(r, Exception) for r in results)
    assert len(world.events("front")) == 3


def test_create_with_the_same_key_returns_the_first_event(world: World) -> None:
    world.add_calendar("front")
    provider = world.provider("front")
    event = RemoteEvent(fields("Gala"), key="cbk1")
    world.graph.advance_clock(-60)  # the first attempt happened a minute ago
    first = provider.create(event)
    world.graph.advance_clock(60)
    again = provider.create(event)
    assert again.ref.id == first.ref.id and again.adopted
    assert not provider.create(RemoteEvent(fields("Other"), key="cbk2")).adopted
    assert len(world.events("front")) == 2
    item = provider.get(first.ref.id, WINDOW)
    assert isinstance(item, RemoteItem) and item.key == "cbk1"  # from the extended property
    listed = [i for p in provider.list_changes(None, WINDOW) for i in p.items]
    keys = sorted(str(i.key) for i in listed if isinstance(i, RemoteItem))
    assert keys == ["cbk1", "cbk2"]  # read back from the transactionId


def test_batch_results_map_each_answer(world: World) -> None:
    world.add_calendar("front")
    provider = world.provider("front")
    kept = provider.create(RemoteEvent(fields("Kept"), key="cbk1"))
    stale = provider.create(RemoteEvent(fields("Stale"), key="cbk2"))
    deleted = provider.create(RemoteEvent(fields("Deleted"), key="cbk3"))
    world.graph.external_update(world.mailbox, stale.ref.id, {"subject": "Edited in Outlook"})
    world.graph.external_delete(world.mailbox, deleted.ref.id)
    world.graph.reset_counters()
    before = provider.requests
    results = provider.write_many(
        [
            WriteOp("create", event=RemoteEvent(fields("New"), key="cbk4")),
            WriteOp("update", event=RemoteEvent(fields("Kept 2"), key="cbk1"), ref=kept.ref),
            WriteOp("update", event=RemoteEvent(fields("Stale 2"), key="cbk2"), ref=stale.ref),
            WriteOp("update", event=RemoteEvent(fields("Gone 2"), key="cbk3"), ref=deleted.ref),
            WriteOp("delete", ref=deleted.ref),
            WriteOp("delete", ref=stale.ref),
        ]
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Written", "Written", "Conflict", "Conflict", "NoneType", "Conflict"]
    assert provider.requests - before == 1 and world.graph.counters()["batch"] == 1
    assert sorted(e["subject"] for e in world.events("front")) == [
        "Edited in Outlook",
        "Kept 2",
        "New",
    ]


def test_writes_go_twenty_to_a_batch(world: World) -> None:
    world.add_calendar("front")
    provider = world.provider("front")
    before = provider.requests
    ops = [WriteOp("create", event=RemoteEvent(fields(f"E{i}"), key=f"cbk{i}")) for i in range(45)]
    results = provider.write_many(ops)
    assert len(results) == 45 and provider.requests - before == 3
    assert len(world.events("front")) == 45


def test_update_and_delete_conditions(world: World) -> None:
    world.add_calendar("front")
    provider = world.provider("front")
    made = provider.create(RemoteEvent(fields("Tea"), key="cbk1"))
    world.graph.external_update(world.mailbox, made.ref.id, {"subject": "Tea (Outlook)"})
    with pytest.raises(Conflict):
        provider.update(made.ref, RemoteEvent(fields("Tea (booking)"), key="cbk1"))
    with pytest.raises(Conflict):
        provider.delete(made.ref)
    provider.delete(RemoteRef(made.ref.id, None))
    provider.delete(RemoteRef(made.ref.id, None))  # 404: already gone, not an error
    assert provider.get(made.ref.id, WINDOW) is None


def test_server_errors_after_retries_name_the_calendar(world: World) -> None:
    world.add_calendar("front")
    provider = world.provider("front", retry=RetryPolicy(attempts=2, sleep=lambda _s: None))
    world.graph.fail_next(2, status=500, path="calendarView/delta")
    with pytest.raises(ProviderError, match=r"calendar 'front' \(Microsoft 365\).*500"):
        list(provider.list_changes(None, WINDOW))


def test_zone_names_map_both_ways() -> None:
    assert iana_zone("W. Europe Standard Time") == "Europe/Berlin"
    assert iana_zone("India Standard Time") == "Asia/Kolkata"
    assert iana_zone("tzone://Microsoft/Utc") == "UTC"
    assert iana_zone("Europe/Amsterdam") == "Europe/Amsterdam"
    assert iana_zone("Customized Time Zone") is None
    assert graph_zone("Europe/Berlin") == "W. Europe Standard Time"
    assert graph_zone("Asia/Kolkata") == "India Standard Time"
    assert graph_zone("Europe/Amsterdam") == "Europe/Amsterdam"  # would come back as Berlin
    assert graph_zone(None) == "UTC"


# --------------------------------------------------------------------- notifications


class Endpoint:
    """The future service's webhook, reduced to what calbridge provides: the validation answer
    for Graph's handshake, and the payloads kept for :func:`handle_graph_notification`."""

    def __init__(self) -> None:
        self.validations = 0
        self.payloads: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                answer = validation_response(urlsplit(self.path).query)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if answer is not None:
                    endpoint.validations += 1
                    body = answer.body.encode()
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                with endpoint.arrived:
                    endpoint.payloads.append(json.loads(raw))
                    endpoint.arrived.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graph/notify"

    def wait(self, count: int) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.payloads) >= count, timeout=10)
            return list(self.payloads)


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


def test_validation_answer_echoes_the_token_as_plain_text() -> None:
    answer = validation_response("validationToken=Validation%3A+Testing+%3Cb%3E")
    assert answer is not None and answer.status == 200
    assert answer.body == "Validation: Testing <b>" and answer.content_type.startswith("text/plain")
    assert validation_response({"other": "x"}) is None


def test_notification_syncs_its_calendar_and_forged_ones_are_rejected(world: World) -> None:
    world.add_calendar("front")
    with endpoint() as service:
        subscription = subscribe_calendar(world.store, world.box, "front", service.url)
        assert service.validations == 1
        with world.store.session() as session:
            calendar = session.scalars(select(Calendar)).one()
            assert calendar.settings["subscription"]["id"] == subscription.id
            state = world.box.open(calendar.secret, "front")["client_state"]
            assert state not in json.dumps(calendar.settings)
        world.create("front", "Walk-in", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
        [payload] = service.wait(1)
    outcome = handle_graph_notification(world.store, world.box, payload)
    assert outcome.ok and [r.created for r in outcome.synced] == [1]
    forged = {"value": [{**payload["value"][0], "clientState": "a-guess"}]}
    refused = handle_graph_notification(world.store, world.box, forged)
    assert refused.synced == [] and "wrong clientState" in refused.rejected[0]
    stranger = {"value": [{**payload["value"][0], "subscriptionId": "someone-elses"}]}
    assert handle_graph_notification(world.store, world.box, stranger).synced == []
    assert handle_graph_notification(world.store, world.box, {"nope": 1}).rejected


def test_subscriptions_are_renewed_before_expiry_and_deleted(world: World) -> None:
    world.add_calendar("front")
    with endpoint() as service:
        first = subscribe_calendar(world.store, world.box, "front", service.url)
        assert renew_subscriptions(world.store, world.box) == []  # three days left
        later = utcnow() + timedelta(days=2, hours=1)
        assert renew_subscriptions(world.store, world.box, now=later) == ["front"]
        with world.store.session() as session:
            renewed = session.scalars(select(Calendar)).one().settings["subscription"]
        assert renewed["id"] == first.id and renewed["expires"] > first.expires.isoformat()
        assert unsubscribe_calendar(world.store, world.box, "front")
        assert not unsubscribe_calendar(world.store, world.box, "front")
    assert world.graph.emulator.store.subscriptions.get(first.id) is None


def test_endpoint_failing_the_handshake_is_a_clear_error(world: World) -> None:
    world.add_calendar("front")
    with NotificationReceiver(mode="wrong") as wrong, pytest.raises(ProviderError) as caught:
        subscribe_calendar(world.store, world.box, "front", wrong.url)
    assert "ValidationError" in str(caught.value) and "calendar 'front'" in str(caught.value)


# --------------------------------------------------------------------- the CLI


def test_cli_links_a_graph_calendar_and_never_prints_its_secret(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calbridge_cli import make_cli

    graph = world.graph
    calendar = graph.add_calendar(world.mailbox, f"cli-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("GRAPH_SECRET", graph.client_secret)
    cli = make_cli(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}")
    common = [
        "--tenant",
        graph.tenant_id,
        "--client-id",
        graph.client_id,
        "--api-base",
        graph.graph_url,
        "--login-base",
        graph.login_base,
        "--ca-file",
        str(graph.ca_cert_path),
        "--calendar-id",
        calendar.id,
    ]
    unset = cli(
        "calendars",
        "add",
        "x",
        "--graph",
        world.mailbox,
        *common,
        "--client-secret-env",
        "NOT_SET_ANYWHERE",
    )
    assert unset.code != 0 and "NOT_SET_ANYWHERE" in unset.err + unset.out
    added = cli(
        "calendars",
        "add",
        "front",
        "--graph",
        world.mailbox,
        *common,
        "--client-secret-env",
        "GRAPH_SECRET",
        "--json",
    )
    assert added.code == 0, added.err
    data = added.json()
    assert isinstance(data, dict) and data["kind"] == "graph"
    assert data["mailbox"] == world.mailbox and data["graph"]["auth"] == "client secret"
    listed = cli("calendars", "list", "--json")
    assert graph.client_secret not in added.out + listed.out
    world.graph.external_create(
        world.mailbox,
        {
            "subject": "From Outlook",
            "start": world.dttz("2027-03-01T09:00:00"),
            "end": world.dttz("2027-03-01T10:00:00"),
        },
        calendar.id,
    )
    store = open_store(f"sqlite:///{tmp_path / 'cli.db'}")
    with store.session() as session:  # the directory, imported as `directory import` would
        import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
    store.dispose()
    synced = cli("sync", "front", "--json")
    assert synced.code == 0, synced.err
    assert '"created": 1' in synced.out
