"""When Basic credentials would cross the network unencrypted (`calendars add` warns)."""

from __future__ import annotations

import pytest

from calbridge.providers.caldav.http import cleartext_warning


@pytest.mark.parametrize(
    "url",
    [
        "http://dav.example.com/cal/",
        "HTTP://Dav.Example.com:8080/cal/",
        "http://192.168.1.20/dav/",
        "http://[2001:db8::1]/dav/",
        "http://localhost.example.com/dav/",
    ],
)
def test_plain_http_to_another_host_is_warned_about_in_one_line(url: str) -> None:
    warning = cleartext_warning(url, "staff")
    assert warning is not None and "\n" not in warning
    assert "password of user 'staff'" in warning and "unencrypted" in warning
    assert "https://" in warning


@pytest.mark.parametrize(
    "url",
    [
        "https://dav.example.com/cal/",
        "http://127.0.0.1:5232/staff/cal/",
        "http://127.3.4.5/cal/",
        "http://localhost:5232/cal/",
        "http://calendar.localhost/cal/",
        "http://[::1]:5232/cal/",
    ],
)
def test_https_and_loopback_need_no_warning(url: str) -> None:
    assert cleartext_warning(url, "staff") is None
