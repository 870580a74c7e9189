"""Radicale-only extras of the CalDAV provider (the shared scenarios run on every server in
tests/contract/): credentials and collection checks, Radicale's one-request seeding, and faults
from a real proxy in front of Radicale (conftest.FaultProxy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from calbridge.domain.remote import (
    RemoteEvent,
    RemoteItem,
)
from calbridge.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderError,
    RateLimited,
)
from calbridge.providers.caldav.provider import CalDAVProvider
from calbridge.providers.retry import RetryPolicy
from calbridge_emulators.radicale import RadicaleServer
from caldav_samples import WINDOW, fields, meeting, names, pull, vevent

if TYPE_CHECKING:  # fixtures' types; conftest is not imported at run time (pytest owns it)
    from conftest import Calendar, FaultProxy

ANN_PASSWORD = "ann-secret"


# ----------------------------------------------------------------- check()


def test_check_with_a_wrong_password_is_an_auth_error_naming_the_calendar(
    calendar: Calendar,
) -> None:
    provider = CalDAVProvider(calendar.url, "ann", "wrong", name="front desk")
    with pytest.raises(ProviderAuthError) as error:
        provider.check()
    message = str(error.value)
    assert "calendar 'front desk' (CalDAV)" in message
    assert "refused the username or password" in message
    assert "`calbridge calendars update front desk --password-env VAR`" in message


def test_check_on_another_users_calendar_is_an_auth_error(radicale: RadicaleServer) -> None:
    url = radicale.make_calendar("bob", "private")
    with pytest.raises(ProviderAuthError, match="user 'ann' may not access"):
        CalDAVProvider(url, "ann", ANN_PASSWORD, name="bob's").check()


def test_check_on_a_collection_that_is_not_a_calendar_is_a_config_error(
    radicale: RadicaleServer,
) -> None:
    for url in (radicale.url + "/ann/", radicale.make_address_book("ann", "contacts")):
        with pytest.raises(ConfigError, match="is not a calendar collection"):
            CalDAVProvider(url, "ann", ANN_PASSWORD, name="home").check()


def test_check_on_a_missing_collection_is_a_config_error(radicale: RadicaleServer) -> None:
    with pytest.raises(ConfigError, match="there is no collection at"):
        CalDAVProvider(radicale.url + "/ann/nothing/", "ann", ANN_PASSWORD).check()


def test_a_first_pull_before_any_probe_still_names_a_wrong_address(
    radicale: RadicaleServer,
) -> None:
    """A provider that has not probed its server sends the first pull's query before asking
    whether the server has sync-collection; an address that is not a calendar (an account,
    an address book, nothing at all) still ends with the probe's own error, not a listing."""
    wrong = {
        radicale.url + "/ann/": "is not a calendar collection",
        radicale.make_address_book("ann", "first-pull-contacts"): "is not a calendar collection",
        radicale.url + "/ann/nothing/": "there is no collection at",
    }
    for url, message in wrong.items():
        provider = CalDAVProvider(url, "ann", ANN_PASSWORD, name="home")
        with pytest.raises(ConfigError, match=message):
            pull(provider, None)


def test_check_on_an_unreachable_server_names_host_and_port(unused_port: int) -> None:
    provider = CalDAVProvider(
        f"http://127.0.0.1:{unused_port}/ann/work/",
        "ann",
        "pw",
        name="work",
        retry=RetryPolicy(attempts=2, base=0.001),
    )
    with pytest.raises(ProviderError, match=f"cannot reach the server at 127.0.0.1:{unused_port}"):
        provider.check()
    assert provider.requests == 2  # retried once


# ------------------------------------------------------------------ pulling


def test_a_seeded_calendar_lists_every_object_at_its_uid(calendar: Calendar) -> None:
    """The emulator's one-request seeding (for benchmarks) leaves a normal calendar behind."""
    zoned = vevent("z1", "DTEND;TZID=Europe/Berlin:20270305T100000", "SUMMARY:Zoned", start="")
    zoned = zoned.replace("DTEND", "DTSTART;TZID=Europe/Berlin:20270305T090000\r\nDTEND")
    seeds = [meeting("s1", "First"), meeting("s2", "Second"), zoned]
    calendar.server.put_collection(calendar.url, seeds, "Seeded")
    provider = calendar.provider()
    provider.check()
    pages, found = pull(provider, None)
    assert names(found) == {
        calendar.href("s1.ics"): "First",
        calendar.href("s2.ics"): "Second",
        calendar.href("z1.ics"): "Zoned",
    }
    calendar.put("s3.ics", meeting("s3", "Later"))
    assert names(pull(provider, pages[-1].token)[1]) == {calendar.href("s3.ics"): "Later"}


def test_a_create_whose_answer_was_lost_is_adopted_on_retry(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    proxy.inject("drop-after", method="PUT")  # Radicale stores it; the answer never arrives
    written = provider.create(RemoteEvent(fields(), "bk-4"))
    assert written.adopted
    assert [status for method, _, status in proxy.log if method == "PUT"] == [None, 412]
    _, found = pull(provider, None)
    assert list(found) == [written.ref.id]


def test_server_errors_and_rate_limits_are_retried(proxied: Calendar, proxy: FaultProxy) -> None:
    proxied.put("m.ics", meeting("m", "Survivor"))
    provider = proxied.provider()
    proxy.inject("500", "429:0", "drop", method="REPORT")
    proxy.inject("503", method="PUT")
    _, found = pull(provider, None)
    assert names(found) == {proxied.href("m.ics"): "Survivor"}
    written = provider.create(RemoteEvent(fields(), "bk-8"))
    assert not written.adopted
    statuses = [status for _, _, status in proxy.log]
    assert statuses.count(500) == 1 and statuses.count(429) == 1 and statuses.count(503) == 1


def test_retries_back_off_exponentially_and_honour_retry_after(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, base=0.5, cap=30, jitter=0.5, sleep=waits.append)
    provider = proxied.provider(retry=policy)
    proxy.inject("500", "503", "429:7")
    provider.check()
    assert 0.5 <= waits[0] <= 0.75 and 1.0 <= waits[1] <= 1.5  # base·2ⁿ plus jitter
    assert waits[2] == 7  # the server's Retry-After
    assert provider.requests == 4


def test_a_put_answer_without_etag_is_completed_by_asking_for_it(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    proxy.inject("no-etag", method="PUT")
    written = provider.create(RemoteEvent(fields(), "bk-9"))
    got = provider.get(written.ref.id, WINDOW)
    assert isinstance(got, RemoteItem) and written.ref.etag == got.ref.etag is not None
    assert [m for m, _, _ in proxy.log] == ["PUT", "PROPFIND", "GET"]


def test_a_server_that_keeps_failing_is_a_provider_error_naming_it(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    proxy.inject(*["502"] * 4)
    with pytest.raises(ProviderError, match=r"failed with 502 .* after 4 attempts") as error:
        provider.check()
    assert "calendar 'work' (CalDAV)" in str(error.value)
    assert provider.requests == 4


def test_a_server_that_keeps_rate_limiting_is_rate_limited(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    proxy.inject(*["429:0"] * 4)
    with pytest.raises(RateLimited) as error:
        proxied.provider().check()
    assert error.value.retry_after == 0
