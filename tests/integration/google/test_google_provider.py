"""What is particular to Google (issue 5): sync tokens, client-chosen ids, etags, quotas, HTTP
batches, push channels and the messages for broken credentials — over real HTTP against the
emulator, with the real google-api-python-client."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google_world import GoogleWorld, soon, timed
from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.domain.remote import EventFields, RemoteEvent, RemoteRef, WriteOp
from calbridge.errors import ConfigError, Conflict, ProviderAuthError, ProviderError
from calbridge.providers.google.notify import (
    handle_google_notification,
    renew_google_channels,
    watch_google_calendar,
)
from calbridge.providers.google.provider import GoogleProvider
from calbridge.providers.retry import RetryPolicy
from calbridge.store.events import ManualAssignment, create_event, update_event, utcnow
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.calendars import add_google_calendar, authorize_google_calendar
from calbridge_cli import make_inprocess_cli
from calbridge_emulators.google.testing import CALENDAR_SCOPE

READONLY = "https://www.googleapis.com/auth/calendar.readonly"
START = datetime(2027, 3, 1, 9)


def one_hour(day: int = 0) -> dict[str, Any]:
    start = START + timedelta(days=day)
    return timed(start, start + timedelta(hours=1))


def booking_fields(name: str, day: int = 0) -> EventFields:
    start = START + timedelta(days=day)
    end = start + timedelta(hours=1)
    times = make_times(start, end, all_day=False, timezone="Europe/London")
    return EventFields(name, times)


def new_bookings(world: GoogleWorld, count: int, manager: str = "u-tom") -> None:
    with world.store.session() as session:
        for i in range(count):
            start = START + timedelta(days=i)
            create_event(
                session,
                name=f"Booking {i}",
                times=make_times(
                    start, start + timedelta(hours=1), all_day=False, timezone="Europe/London"
                ),
                manual=ManualAssignment("co-acme", None, manager, manager),
            )


# ---------------------------------------------------------------- sync tokens (410)


def test_expired_sync_token_gives_a_full_resync_without_duplicates(world: GoogleWorld) -> None:
    world.add_calendar("front")
    ids = [world.insert("front", {"summary": f"Event {i}", **one_hour(i)}) for i in range(3)]
    start = soon()
    world.insert(
        "front",
        {"summary": "Daily", "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"], **timed(start, start)},
    )
    assert world.sync("front").created == 5
    world.gcal.emulator.expire_sync_tokens()
    world.remove("front", ids[0])
    world.gcal.emulator.reset_counters()
    report = world.sync("front")
    assert report.full_resync and report.ok, report.error
    assert world.gcal.request_counts()["by_status"]["410"] == 1
    assert (report.created, report.cancelled) == (0, 1)
    assert len(world.bookings()) == 5


def test_listing_is_paged_and_a_series_split_across_pages_stays_whole(world: GoogleWorld) -> None:
    world.add_calendar("front", page_size=2)
    start = soon()
    master = world.insert(
        "front",
        {
            "summary": "Class",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"],
            **timed(start, start + timedelta(hours=1), "Europe/Berlin"),
        },
    )
    for i in range(4):
        world.insert("front", {"summary": f"Single {i}", **one_hour(i)})
    instances = (
        world.person("front")
        .events()
        .instances(calendarId=world.calendars["front"], eventId=master)
        .execute()["items"]
    )
    world.patch("front", instances[3]["id"], {"summary": "Class (last, longer)"})  # on page 3
    world.gcal.emulator.reset_counters()
    report = world.sync("front")
    assert report.ok and report.created == 8, report.error
    assert world.gcal.request_counts()["by_method"]["calendar.events.list"] == 3  # 6 / 2
    assert world.booking("Class (last, longer)").status == "confirmed"
    world.patch("front", instances[0]["id"], {"summary": "Class (first)"})
    again = world.sync("front")  # only one exception changed: the series is re-read whole
    assert (again.updated, again.cancelled, again.created) == (1, 0, 0)
    assert world.booking("Class (last, longer)").status == "confirmed"


# ---------------------------------------------------------------- client-chosen ids (409)


def test_retried_insert_is_adopted_never_duplicated(world: GoogleWorld) -> None:
    world.add_calendar("front")
    provider = world.provider("front")
    event = RemoteEvent(booking_fields("Launch"), key="cbfeed01e42")
    first = provider.create(event)
    again = provider.create(event)
    assert first.ref.id == "cbfeed01e42" and not first.adopted
    assert again.adopted and again.ref == first.ref
    assert [e["id"] for e in world.live("front")] == ["cbfeed01e42"]


def test_insert_whose_id_holds_a_foreign_event_is_a_conflict(world: GoogleWorld) -> None:
    world.add_calendar("front")
    world.person("front").events().insert(
        calendarId=world.calendars["front"],
        body={"id": "cbfeed01e43", "summary": "Theirs", **one_hour()},
    ).execute()
    with pytest.raises(Conflict, match="calbridge did not create it"):
        world.provider("front").create(RemoteEvent(booking_fields("Ours"), key="cbfeed01e43"))


@pytest.mark.parametrize("direction", ["push", "both"])
def test_create_whose_answer_was_lost_is_adopted_on_the_next_sync(
    world: GoogleWorld, direction: str
) -> None:
    """Push-only, the retried inserts meet 409 and adopt; two-way, the pull finds our key
    on the events first. Either way: no second copy, no second booking."""
    world.add_calendar("toms", owner="u-tom", direction=direction)
    new_bookings(world, 3)
    lost = world.factory()

    def answer_lost(calendar: Calendar) -> Any:
        provider: Any = lost(calendar)
        real = provider.write_many

        def write_many(ops: list[WriteOp]) -> Any:
            real(ops)  # Google did the work; the connection dropped before the answer came
            raise ProviderError("connection lost while reading the answer")

        provider.write_many = write_many
        return provider

    failed = world.sync("toms", factory=answer_lost)
    assert not failed.ok and len(world.live("toms")) == 3
    world.gcal.emulator.reset_counters()
    report = world.sync("toms")
    assert report.ok, report.error
    conflicts = world.gcal.request_counts()["by_status"].get("409", 0)
    assert (report.pushed_created, conflicts) == ((3, 3) if direction == "push" else (0, 0))
    with world.store.session() as session:
        assert {link.state for link in session.scalars(select(Link))} == {"ok"}
    assert len(world.live("toms")) == 3 and len(world.bookings()) == 3
    again = world.sync("toms")
    assert (again.created, again.pushed_created) == (0, 0)


# ---------------------------------------------------------------- etags (412)


def test_stale_etag_is_answered_by_repull_and_merge(world: GoogleWorld) -> None:
    world.add_calendar("front")
    event_id = world.insert("front", {"summary": "Dinner", "location": "Sea Lounge", **one_hour()})
    world.sync("front")
    with world.store.session() as session:
        update_event(session, session.scalars(select(Event)).one(), {"name": "Dinner (booking)"})
    changed = []

    def calendar_changes_after_pull(_count: int) -> None:
        if not changed:  # between this run's pull and its push
            changed.append(world.patch("front", event_id, {"location": "Terrace"}))

    world.gcal.emulator.reset_counters()
    report = world.sync("front", progress=calendar_changes_after_pull)
    assert report.ok and report.pushed_updated == 1, report.error
    assert world.gcal.request_counts()["by_status"].get("412", 0) >= 1
    stored = world.event("front", event_id)
    assert (stored["summary"], stored["location"]) == ("Dinner (booking)", "Terrace")
    assert world.booking("Dinner (booking)").location == "Terrace"
    assert report.conflicts == 0  # different fields: merged, no conflict


def test_update_with_an_old_etag_raises_conflict(world: GoogleWorld) -> None:
    world.add_calendar("front")
    event_id = world.insert("front", {"summary": "Old", **one_hour()})
    old_etag = world.event("front", event_id)["etag"]
    world.patch("front", event_id, {"summary": "Changed on the calendar"})
    with pytest.raises(Conflict):
        world.provider("front").update(
            RemoteRef(event_id, old_etag), RemoteEvent(booking_fields("Ours"), key="k")
        )


# ---------------------------------------------------------------- quota and server errors


def test_quota_errors_are_retried_with_backoff_honouring_retry_after(world: GoogleWorld) -> None:
    world.add_calendar("front")
    world.insert("front", {"summary": "Busy day", **one_hour()})
    emulator = world.gcal.emulator
    emulator.inject_fault(403, reason="userRateLimitExceeded", count=1, method="GET")
    emulator.inject_fault(403, reason="rateLimitExceeded", count=1, method="GET")
    emulator.inject_fault(429, retry_after=7, count=1, method="GET")
    patient = RetryPolicy(attempts=5, base=0.5, cap=60, jitter=0.5)
    report = world.sync("front", factory=world.factory(patient))
    assert report.ok and report.created == 1, report.error
    assert len(world.sleeps) == 3
    assert 0.5 <= world.sleeps[0] <= 0.75 and 1.0 <= world.sleeps[1] <= 1.5  # exponential
    assert world.sleeps[2] == 7  # the server's Retry-After


def test_server_errors_are_retried_and_reported_when_they_persist(world: GoogleWorld) -> None:
    world.add_calendar("front")
    world.insert("front", {"summary": "Shaky", **one_hour()})
    world.gcal.emulator.inject_fault(500, count=2, method="GET")
    assert world.sync("front").created == 1
    world.gcal.emulator.inject_fault(503, count=None, method="GET")
    failed = world.sync("front")
    assert not failed.ok and "after 4 attempts" in (failed.error or "")
    assert failed.requests >= 4


# ---------------------------------------------------------------- HTTP batches


def test_writes_go_in_batches_of_fifty(world: GoogleWorld) -> None:
    world.add_calendar("toms", owner="u-tom")
    new_bookings(world, 120)
    world.gcal.emulator.reset_counters()
    report = world.sync("toms")
    counts = world.gcal.request_counts()
    assert report.pushed_created == 120 and report.ok, report.error
    assert counts["batch_requests"] == 3 and counts["batch_inner_calls"] == 120
    assert report.requests == counts["http_requests"] <= 5  # token, list, 3 batches


def test_batch_partial_failure_writes_the_rest_and_recovers_the_failed_calls(
    world: GoogleWorld,
) -> None:
    world.add_calendar("toms", owner="u-tom")
    new_bookings(world, 6)
    emulator = world.gcal.emulator
    emulator.inject_fault(429, count=1, on=("batch_part",), retry_after=2)  # re-sent alone
    emulator.inject_fault(400, reason="invalid", count=1, on=("batch_part",))  # falls back
    emulator.reset_counters()
    report = world.sync("toms", factory=world.factory(RetryPolicy(cap=60)))
    assert report.ok and report.pushed_created == 6, report.error
    counts = world.gcal.request_counts()
    assert counts["batch_requests"] == 2 and counts["batch_inner_calls"] == 7
    assert world.sleeps == [2]  # the part's Retry-After, before re-sending it alone
    assert len(world.live("toms")) == 6 and len(world.bookings()) == 6
    with world.store.session() as session:
        assert {link.state for link in session.scalars(select(Link))} == {"ok"}


def test_write_many_maps_each_part_to_its_own_result(world: GoogleWorld) -> None:
    world.add_calendar("front")
    kept = world.insert("front", {"summary": "Kept", **one_hour()})
    moved = world.insert("front", {"summary": "Moved", **one_hour(1)})
    gone = world.insert("front", {"summary": "Gone", **one_hour(2)})
    world.remove("front", gone)
    stale = world.event("front", moved)["etag"]
    world.patch("front", moved, {"summary": "Moved on the calendar"})
    fields = booking_fields("Updated", 3)
    results = world.provider("front").write_many(
        [
            WriteOp("create", event=RemoteEvent(fields, key="cbfeed01e50")),
            WriteOp("update", event=RemoteEvent(fields, key="x"), ref=RemoteRef(kept)),
            WriteOp("update", event=RemoteEvent(fields, key="y"), ref=RemoteRef(moved, stale)),
            WriteOp("delete", ref=RemoteRef(gone)),
        ]
    )
    created, updated, conflict, deleted = results
    assert created.ref.id == "cbfeed01e50"  # type: ignore[union-attr]
    assert updated.ref.etag == world.event("front", kept)["etag"]  # type: ignore[union-attr]
    assert isinstance(conflict, Conflict) and deleted is None
    assert world.gcal.request_counts()["batch_requests"] == 1


# ---------------------------------------------------------------- push notifications


def test_notification_syncs_its_calendar_and_a_bad_token_is_rejected(world: GoogleWorld) -> None:
    from calbridge_emulators.google.testing import notification_receiver

    world.add_calendar("front")
    with notification_receiver() as receiver:
        channel = watch_google_calendar(
            world.store, world.box, "front", receiver.url, provider_factory=world.factory()
        )
        opened = receiver.wait_for(1)[0]
        assert opened["x-goog-channel-id"] == channel.id
        outcome = handle_google_notification(world.store, world.box, opened)
        assert outcome.accepted and outcome.reason == "channel opened"
        world.insert("front", {"summary": "Booked by phone", **one_hour()})
        change = receiver.wait_for(2)[1]
    assert change["x-goog-resource-state"] == "exists"
    forged = {**change, "x-goog-channel-token": "guessed"}
    rejected = handle_google_notification(world.store, world.box, forged)
    assert not rejected.accepted and "token does not match" in rejected.reason
    assert world.bookings() == []
    unknown = handle_google_notification(world.store, world.box, {"X-Goog-Channel-ID": "nope"})
    assert not unknown.accepted
    synced = handle_google_notification(
        world.store, world.box, change, provider_factory=world.factory()
    )
    assert synced.accepted and synced.report is not None and synced.report.created == 1
    assert world.booking("Booked by phone").status == "confirmed"


def test_channels_are_renewed_before_they_expire(world: GoogleWorld) -> None:
    world.add_calendar("front")
    first = watch_google_calendar(
        world.store, world.box, "front", "http://127.0.0.1:9/hook", ttl=timedelta(hours=2)
    )
    assert renew_google_channels(world.store, world.box, now=utcnow()) == ["front"]
    with world.store.session() as session:
        watch = world.calendar_row(session, "front").settings["watch"]
    assert watch["channel_id"] != first.id
    channels = world.gcal.emulator.store.channels
    assert channels[first.id].stopped and not channels[watch["channel_id"]].stopped
    later = renew_google_channels(world.store, world.box, now=utcnow())
    assert later == []  # a week ahead: nothing due


# ---------------------------------------------------------------- broken credentials


def test_revoked_grant_names_the_calendar_and_the_fix(world: GoogleWorld) -> None:
    world.add_calendar("front", user="front@harbour.example")
    world.add_calendar("back")
    world.insert("back", {"summary": "Unaffected", **one_hour()})
    world.gcal.emulator.revoke("front@harbour.example")
    failed = world.sync("front")
    assert not failed.ok
    assert "calendar 'front' (Google)" in (failed.error or "")
    assert (failed.error or "").endswith(
        "or give the calendar a new key: "
        "`calbridge calendars update front --service-account NEW_KEY.json`"
    )
    assert world.sync("back").created == 1


def test_unknown_calendar_id_is_a_clear_error(world: GoogleWorld) -> None:
    world.gcal.add_user("someone@harbour.example")
    with world.store.session() as session, pytest.raises(ConfigError) as error:
        add_google_calendar(
            session,
            world.box,
            "nowhere",
            "no-such-calendar@group.calendar.google.com",
            service_account_info=world.gcal.service_account_info(),
            subject="someone@harbour.example",
            api_base=world.gcal.base_url,
        )
    assert "calendar 'nowhere' (Google)" in str(error.value)
    assert "no calendar 'no-such-calendar@group.calendar.google.com'" in str(error.value)
    assert "calbridge calendars add nowhere" in str(error.value)


def oauth_files(world: GoogleWorld, email: str, scopes: list[str]) -> tuple[dict[str, Any], str]:
    """An installed-app client file and a refresh token issued to it (as after consent)."""
    info = world.gcal.emulator.create_authorized_user(email, scopes)
    client = {
        "installed": {
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "token_uri": info["token_uri"],
            "auth_uri": world.gcal.base_url + "/o/oauth2/auth",
        }
    }
    return client, info["refresh_token"]


def test_oauth_calendar_is_used_with_its_stored_refresh_token(world: GoogleWorld) -> None:
    calendar_id = world.gcal.add_user("mia@harbour.example")
    world.calendars["mias"] = calendar_id
    world.insert("mias", {"summary": "Mia's tasting", **one_hour()})
    client, refresh_token = oauth_files(world, "mia@harbour.example", [CALENDAR_SCOPE])
    with world.store.session() as session:
        add_google_calendar(
            session,
            world.box,
            "mias",
            calendar_id,
            oauth_client=client,
            api_base=world.gcal.base_url,
        )
    unauthorized = world.sync("mias")
    assert not unauthorized.ok and "calbridge calendars auth mias" in (unauthorized.error or "")
    with world.store.session() as session:
        calendar = world.calendar_row(session, "mias")
        authorize_google_calendar(world.box, calendar, refresh_token)
        assert refresh_token not in (calendar.secret or "")  # sealed
    report = world.sync("mias")
    assert report.ok and report.created == 1, report.error
    assert world.booking("Mia's tasting").booked_by_id == "u-mia"
    world.gcal.emulator.revoke("mia@harbour.example")
    revoked = world.sync("mias")
    assert "revoked or has expired" in (revoked.error or "")
    assert "`calbridge calendars auth mias`" in (revoked.error or "")


def test_grant_without_calendar_scope_says_which_command_fixes_it(world: GoogleWorld) -> None:
    calendar_id = world.gcal.add_user("raj@harbour.example")
    client, refresh_token = oauth_files(world, "raj@harbour.example", [READONLY])
    user_file = {"type": "authorized_user", **client["installed"], "refresh_token": refresh_token}
    with world.store.session() as session, pytest.raises(ProviderAuthError) as error:
        add_google_calendar(
            session,
            world.box,
            "rajs",
            calendar_id,
            oauth_client=user_file,
            api_base=world.gcal.base_url,
        )
    assert "does not include calendar access" in str(error.value)
    assert "calbridge calendars auth rajs" in str(error.value)


def test_cli_links_a_google_calendar_and_authorizes_an_oauth_one(
    world: GoogleWorld, tmp_path: Path
) -> None:
    cli = make_inprocess_cli(tmp_path / "data", f"sqlite:///{tmp_path / 'cli.db'}")
    calendar_id = world.gcal.add_user("venue@harbour.example")
    key = world.gcal.write_service_account_key(tmp_path / "key.json")
    base = world.gcal.base_url
    done = cli(
        "calendars", "add", "venue", "--google", calendar_id, "--service-account", str(key),
        "--subject", "venue@harbour.example", "--api-base", base, "--json",
    )  # fmt: skip
    assert done.code == 0, done.err
    shown = done.json()
    assert shown["kind"] == "google" and shown["google"]["subject"] == "venue@harbour.example"  # type: ignore[index]
    assert "private_key" not in done.out
    client, token = oauth_files(world, "venue@harbour.example", [CALENDAR_SCOPE])
    (tmp_path / "client.json").write_text(json.dumps(client))
    assert cli("calendars", "remove", "venue").code == 0  # a calendar is linked once
    added = cli(
        "calendars", "add", "mine", "--google", calendar_id,
        "--oauth-client", str(tmp_path / "client.json"), "--api-base", base,
    )  # fmt: skip
    assert added.code == 0 and "calbridge calendars auth mine" in added.out, added.err
    (tmp_path / "user.json").write_text(
        json.dumps({"type": "authorized_user", **client["installed"], "refresh_token": token})
    )
    authorized = cli("calendars", "auth", "mine", "--authorized-user", str(tmp_path / "user.json"))
    assert authorized.code == 0, authorized.err
    bad = cli("calendars", "add", "x", "--google", calendar_id, "--api-base", base)
    assert bad.code != 0 and "--service-account" in bad.err
    assert "Traceback" not in bad.err


def test_provider_counts_every_request_it_makes(world: GoogleWorld) -> None:
    world.add_calendar("front")
    provider: GoogleProvider = world.provider("front")
    world.gcal.emulator.reset_counters()
    provider.check()
    provider.write_many(
        [WriteOp("create", event=RemoteEvent(booking_fields("A"), key="cbfeed01e60"))]
    )
    counts = world.gcal.request_counts()
    assert provider.requests == counts["http_requests"] == 3  # token, check, one batch
    assert counts["token_requests"] == 1


def test_delegation_without_calendar_scope_says_where_to_allow_it(world: GoogleWorld) -> None:
    calendar_id = world.gcal.add_user("ops@harbour.example")
    narrow = world.gcal.emulator.create_service_account(
        "narrow@calbridge-emulator.iam.gserviceaccount.com", delegation_scopes=[READONLY]
    )
    with world.store.session() as session, pytest.raises(ProviderAuthError) as error:
        add_google_calendar(
            session,
            world.box,
            "ops",
            calendar_id,
            service_account_info=narrow,
            subject="ops@harbour.example",
            api_base=world.gcal.base_url,
        )
    assert "may not act as ops@harbour.example" in str(error.value)
    assert "Domain-wide delegation" in str(error.value) and CALENDAR_SCOPE in str(error.value)


def test_expired_access_tokens_are_refreshed_and_counted_even_inside_a_batch(
    world: GoogleWorld,
) -> None:
    world.add_calendar("front")
    provider = world.provider("front")
    world.gcal.emulator.reset_counters()
    provider.check()
    world.gcal.emulator.expire_access_tokens()  # the server forgets; the client does not know
    results = provider.write_many(
        [WriteOp("create", event=RemoteEvent(booking_fields("A"), key="cbfeed01e61"))]
    )
    assert not isinstance(results[0], Exception)
    counts = world.gcal.request_counts()
    assert counts["token_requests"] == 2
    assert provider.requests == counts["http_requests"]
