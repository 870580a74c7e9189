"""A server that is down is reported in seconds: a connection that cannot be opened is tried
``connect_attempts`` times (not the full retry budget), a URL httpx cannot send to is not
retried at all, and opening a connection has its own short timeout, apart from the calendar's
read timeout."""

from __future__ import annotations

import httpx
import pytest

from calbridge.errors import ConfigError
from calbridge.providers.http_client import (
    CONNECT_TIMEOUT,
    RequestCounter,
    check_http_url,
    counted_client,
)
from calbridge.providers.retry import RetryPolicy


def attempts_until_raised(error: Exception, policy: RetryPolicy) -> int:
    calls = 0

    def send() -> httpx.Response:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)):
        policy.run(send)
    return calls


REQUEST = httpx.Request("GET", "http://127.0.0.1:9/")
POLICY = RetryPolicy(attempts=4, connect_attempts=2, sleep=lambda _s: None)


def test_a_refused_connection_is_tried_connect_attempts_times() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST)
    assert attempts_until_raised(refused, POLICY) == 2
    timeout = httpx.ConnectTimeout("timed out", request=REQUEST)
    assert attempts_until_raised(timeout, POLICY) == 2


def test_a_lost_answer_still_gets_every_attempt() -> None:
    lost = httpx.ReadTimeout("no answer", request=REQUEST)
    assert attempts_until_raised(lost, POLICY) == 4


def test_a_url_without_a_scheme_is_never_retried() -> None:
    bad = httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol.")
    assert attempts_until_raised(bad, POLICY) == 1


def test_opening_a_connection_has_a_short_timeout_of_its_own() -> None:
    client = counted_client(RequestCounter(), timeout=30)
    try:
        assert client.timeout.connect == CONNECT_TIMEOUT == 5
        assert client.timeout.read == 30
    finally:
        client.close()
    quick = counted_client(RequestCounter(), timeout=2)
    try:
        assert quick.timeout.connect == 2  # never longer than the calendar's own timeout
    finally:
        quick.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("dav.example.com/cal/", "has no http:// or https:// scheme"),
        ("ftp://dav.example.com/cal/", "has no http:// or https:// scheme"),
        ("https:///cal/", "names no server"),
        ("https://dav.example.com:port/", "is not a valid URL"),
    ],
)
def test_calendar_urls_are_checked_before_use(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as raised:
        check_http_url(url, "--caldav")
    assert str(raised.value).startswith(f"--caldav '{url}'")


def test_a_good_calendar_url_passes() -> None:
    assert check_http_url(" https://dav.example.com/cal/ ", "--caldav") == (
        "https://dav.example.com/cal/"
    )
