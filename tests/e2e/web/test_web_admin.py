"""The admin UI as an admin uses it, in Debian's Chromium against a running ``calbridge serve``
with a real Radicale (see conftest.py for the world). Each test makes its own data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect
from web_helpers import (
    ADMIN,
    RADICALE_USERS,
    VIEWER,
    WebWorld,
    add_unchecked,
    login,
    shot,
    wait_until,
)

from calbridge_emulators.google.testing import running_emulator


def csrf_of(page: Page) -> str:
    return str(page.locator("form.who input[name=csrf_token]").get_attribute("value"))


def calendar_id(page: Page, world: WebWorld, name: str) -> int:
    page.goto(world.url + "/calendars")
    href = page.get_by_role("link", name=name, exact=True).get_attribute("href")
    assert href is not None
    return int(href.rsplit("/", 1)[1])


def test_dashboard_shows_a_failing_calendar_with_its_hint_and_a_red_rollup(
    page: Page, world: WebWorld
) -> None:
    page.goto(world.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    login(page, world)
    row = page.locator("tr", has=page.get_by_role("link", name="broken", exact=True))
    # the service's first poll fails on the wrong password; the table updates without reload
    expect(row).to_have_attribute("data-state", "auth_expired", timeout=30_000)
    expect(row).to_contain_text("Sign-in expired")
    expect(row).to_contain_text("What to do: update the credentials of calendar 'broken'")
    rollup = page.get_by_role("region", name=re.compile("need.? a person"))
    expect(rollup).to_contain_text("broken: Sign-in expired")
    shot(page, world, "dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(row).to_be_visible()
    shot(page, world, "dashboard-phone")


def test_add_radicale_calendar_wrong_then_right_password_sync_now_and_read_a_trace(
    page: Page, world: WebWorld
) -> None:
    url = world.new_radicale_calendar(
        "desk", [("board-1", "Board meeting", "ann.lee@acme.example")]
    )
    login(page, world)
    page.goto(world.url + "/calendars/new")
    page.get_by_label("Name in calbridge").fill("desk")
    page.get_by_label("CalDAV calendar URL").fill(url)
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password (app password)").fill("wrong-password")
    page.get_by_role("button", name="Test connection").click()
    outcome = page.locator("#outcome")
    expect(outcome).to_contain_text("Connection test failed")
    expect(outcome).to_contain_text(re.compile("password|credentials|401", re.I))
    assert "wrong-password" not in page.content()  # a typed secret is never sent back
    shot(page, world, "calendar-add-failed")

    expect(page.get_by_label("CalDAV calendar URL")).to_have_value(url)  # kept, not the secret
    page.get_by_label("Password (app password)").fill(RADICALE_USERS["ann"])
    page.get_by_role("button", name="Test connection").click()
    expect(outcome).to_contain_text("Connection OK")
    page.get_by_label("Password (app password)").fill(RADICALE_USERS["ann"])
    page.get_by_role("button", name="Add calendar").click()
    expect(page.get_by_role("status")).to_contain_text("Added calendar 'desk'")

    page.goto(world.url + "/")
    row = page.locator("tr", has=page.get_by_role("link", name="desk", exact=True))
    expect(row).to_have_attribute("data-state", "ok", timeout=30_000)

    # a booking made in the booking system, for this calendar: waiting until a sync
    event_id = world.create_booking("Budget review", "tom@harbour.example", calendar="desk")
    page.goto(f"{world.url}/bookings/{event_id}")
    expect(page.locator("table").first).to_contain_text("waiting to be written")

    page.goto(world.url + "/")
    row.get_by_role("button", name="Sync desk now").click()
    expect(page.get_by_role("status").first).to_contain_text("Sync of 'desk' queued")

    def written() -> bool:
        page.goto(f"{world.url}/bookings/{event_id}")
        return "in sync" in page.locator("main").inner_text()

    wait_until(written, "the booking to be written to Radicale by Sync now")
    assert "Budget review" in "".join(world.objects("desk"))

    # the calendar's event became a booking; its page explains the assignment
    page.goto(world.url + "/bookings?q=Board")
    page.get_by_role("link", name="Board meeting").click()
    trace = page.locator("#trace")
    expect(trace).to_contain_text("ann.lee@acme.example")
    expect(trace).to_contain_text("Ann Lee")
    expect(page.locator("dl.fields")).to_contain_text("Acme Corp")
    shot(page, world, "booking")


def test_credentials_updated_in_place_bring_a_calendar_back_and_remove_keeps_bookings(
    page: Page, world: WebWorld
) -> None:
    url = world.new_radicale_calendar(
        "old-pass", [("talk-1", "Supplier talk", "tom@harbour.example")]
    )
    add_unchecked(world.store, world.data_dir, "old-pass", url, "an-old-password")
    login(page, world)
    cal = calendar_id(page, world, "old-pass")
    page.goto(f"{world.url}/calendars/{cal}")
    page.get_by_role("button", name="Sync old-pass now").click()
    expect(page.locator("#state")).to_have_text("Sign-in expired", timeout=30_000)

    page.get_by_label("New password").fill("still-wrong-password")
    page.get_by_role("button", name="Check and save").click()
    expect(page.get_by_role("status").first).to_contain_text("Not changed")
    page.get_by_label("New password").fill(RADICALE_USERS["ann"])
    page.get_by_role("button", name="Check and save").click()
    expect(page.get_by_role("status").first).to_contain_text("bookings and links are kept")
    expect(page.locator("#state")).to_have_text("OK", timeout=30_000)
    page.goto(world.url + "/bookings?q=Supplier")
    expect(page.get_by_role("link", name="Supplier talk")).to_have_count(1)

    page.goto(f"{world.url}/calendars/{cal}")
    page.get_by_role("button", name="Remove old-pass").click()
    expect(page.get_by_role("status").first).to_contain_text("every booking is kept")
    expect(page.get_by_role("link", name="old-pass", exact=True)).to_have_count(0)
    page.goto(world.url + "/bookings?q=Supplier")
    expect(page.get_by_role("link", name="Supplier talk")).to_have_count(1)


def test_review_queue_resolves_an_ambiguous_booking(page: Page, world: WebWorld) -> None:
    event_id = world.create_booking("Front desk lunch", "front-desk@harbour.example")
    login(page, world)
    page.goto(world.url + "/review")
    item = page.locator(f"#booking-{event_id}")
    expect(item).to_contain_text("ambiguous")
    item.get_by_label("Re-assign to").fill("ann lee")
    choice = item.get_by_label(re.compile("Ann Lee"))
    expect(choice).to_be_visible()  # search-as-you-type filled in the choices
    page.wait_for_load_state("networkidle")  # the last keystroke's results are in
    choice.check()
    shot(page, world, "review")  # after the last check: a full-page shot may reset input state
    item.get_by_role("button", name=f"Re-assign booking {event_id}").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Re-assigned booking {event_id}")
    expect(page.locator(f"#booking-{event_id}")).to_have_count(0)

    page.goto(f"{world.url}/bookings/{event_id}")
    expect(page.locator("dl.fields")).to_contain_text("Acme Corp")
    history = page.locator("table").last
    expect(history).to_contain_text(ADMIN[0])
    expect(history).to_contain_text("reassigned")


def test_directory_import_shows_each_error_at_its_json_path_and_writes_nothing(
    page: Page, world: WebWorld, tmp_path: Path
) -> None:
    bad = {
        "companies": [],
        "contacts": [
            {"id": "ct-new-1", "name": "New One", "primary_email": "one@new.example"},
            {"id": "ct-new-2", "name": "New Two", "primary_email": "two@new.example",
             "company": "co-missing"},
        ],
        "users": [],
    }  # fmt: skip
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    login(page, world)
    page.goto(world.url + "/directory")
    page.get_by_label("Directory file (JSON)").set_input_files(str(path))
    page.get_by_role("button", name="Check and import").click()
    problems = page.locator("#import-problems")
    expect(problems).to_contain_text("nothing was imported")
    expect(problems.locator("code")).to_have_text(["$.contacts[1].company"])
    expect(problems).to_contain_text("unknown company 'co-missing'")
    shot(page, world, "directory")
    page.get_by_label("Search users, contacts and companies").fill("ct-new")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#found")).to_contain_text("Nothing found")


def test_a_viewer_can_look_but_not_write(page: Page, world: WebWorld) -> None:
    login(page, world, VIEWER)
    expect(page.get_by_role("button", name=re.compile("Sync .* now"))).to_have_count(0)
    broken = calendar_id(page, world, "broken")
    refused = page.request.post(
        f"{world.url}/calendars/{broken}/sync", form={"csrf_token": csrf_of(page)}
    )
    assert refused.status == 403
    assert "viewer" in refused.text()
    page.goto(world.url + "/directory")
    expect(page.get_by_role("button", name="Check and import")).to_have_count(0)


def test_a_post_without_the_csrf_token_is_refused(page: Page, world: WebWorld) -> None:
    event_id = world.create_booking("Token test", "nobody@elsewhere.example")
    login(page, world)
    for form in ({}, {"csrf_token": "forged"}):
        refused = page.request.post(f"{world.url}/review/{event_id}/accept", form=form)
        assert refused.status == 403
        assert "CSRF" in refused.text()
    page.goto(world.url + "/review")
    expect(page.locator(f"#booking-{event_id}")).to_contain_text("Default Account")
    accepted = page.request.post(
        f"{world.url}/review/{event_id}/accept", form={"csrf_token": csrf_of(page)}
    )
    assert accepted.ok
    page.goto(world.url + "/review")
    expect(page.locator(f"#booking-{event_id}")).to_have_count(0)


def test_a_booking_titled_like_a_script_is_shown_as_text(page: Page, world: WebWorld) -> None:
    title = "<script>alert(1)</script>"
    event_id = world.create_booking(title, "tom@harbour.example")
    dialogs: list[Any] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, world)
    page.goto(world.url + "/bookings?q=%3Cscript")
    expect(page.get_by_role("link", name=title)).to_be_visible()
    page.goto(f"{world.url}/bookings/{event_id}")
    expect(page.locator("#booking-name")).to_have_text(title)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()
    assert dialogs == []


def test_sign_in_is_throttled_after_repeated_failures(page: Page, world: WebWorld) -> None:
    for _ in range(5):
        page.goto(world.url + "/login")
        page.get_by_label("Email").fill("guess@venue.example")
        page.get_by_label("Password").fill("not-it")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#login-error")).to_contain_text("Wrong email or password")
    page.get_by_label("Password").fill("still-not-it")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("Too many failed sign-ins")


def test_every_main_page_renders_for_an_admin(page: Page, world: WebWorld) -> None:
    login(page, world)
    for path, heading, name in (
        ("/calendars", "Calendars", "calendars"),
        ("/bookings", "Bookings", "bookings"),
        ("/rejections", "Rejections", "rejections"),
        ("/conflicts", "Conflicts", "conflicts"),
        ("/history", "Sync history", "history"),
    ):
        page.goto(world.url + path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        shot(page, world, name)
    page.goto(world.url + "/history")
    expect(page.locator("svg.chart title").first).to_contain_text("Sync runs per day")
    expect(page.locator("#runs")).to_contain_text("broken")


def test_google_consent_started_from_the_calendar_page(page: Page, world: WebWorld) -> None:
    """A Google calendar linked with an OAuth client: declining on Google's consent page stores
    nothing and says so; allowing stores the (checked) refresh token and the calendar syncs."""
    with running_emulator() as gcal:
        person = gcal.add_user("ann@harbour.example")
        login(page, world)
        page.goto(world.url + "/calendars/new?kind=google")
        page.get_by_label("Name in calbridge").fill("ann-google")
        page.get_by_label("Google calendar id").fill(person)
        page.get_by_label("OAuth client file").fill(json.dumps(gcal.oauth_client_info()))
        page.get_by_label("API base URL (empty: the real service)").fill(gcal.base_url)
        page.get_by_role("button", name="Add calendar").click()
        expect(page.get_by_role("status")).to_contain_text("Next: give Google's consent")

        gcal.set_consent(person, granted=False)
        page.get_by_role("button", name="Give Google's consent").click()
        expect(page.get_by_role("status")).to_contain_text("access was declined")

        gcal.set_consent(person)
        page.goto(world.url + "/calendars")
        page.get_by_role("link", name="ann-google", exact=True).click()
        page.get_by_role("button", name="Give Google's consent").click()
        expect(page.get_by_role("status")).to_contain_text("Google's consent stored")
        expect(page.locator("#state")).to_have_text("OK", timeout=30_000)
        assert "refresh_token" not in page.content()
