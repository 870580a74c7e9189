"""SPEC §2: addresses compare trimmed and case-insensitively, with iCalendar's ``mailto:`` off."""

from __future__ import annotations

import pytest

from calbridge.domain.email import MAX_EMAIL_LENGTH, is_valid_email, normalize_email
from calbridge.errors import BadEmail, CalbridgeError


def test_address_is_trimmed() -> None:
    assert normalize_email("  ann@acme.example\n") == "ann@acme.example"


def test_address_is_lower_cased() -> None:
    assert normalize_email("Ann.Lee@ACME.Example") == "ann.lee@acme.example"


@pytest.mark.parametrize("raw", ["mailto:ann@acme.example", "MAILTO:Ann@Acme.example"])
def test_mailto_prefix_is_stripped_in_any_case(raw: str) -> None:
    assert normalize_email(raw) == "ann@acme.example"


def test_mailto_prefix_and_surrounding_spaces_are_stripped_together() -> None:
    assert normalize_email("  mailto: ann@acme.example ") == "ann@acme.example"


def test_gmail_style_dots_and_plus_tags_are_kept() -> None:
    assert normalize_email("Ann.Lee+events@gmail.example") == "ann.lee+events@gmail.example"


def test_non_ascii_address_is_lower_cased() -> None:
    assert normalize_email("ÅSA@Bokning.example") == "åsa@bokning.example"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "mailto:",
        "ann",
        "ann@",
        "@acme.example",
        "ann@acme",
        "ann@@acme.example",
        "ann@b@acme.example",
        "ann lee@acme.example",
        "Ann Lee <ann@acme.example>",
        "ann@acme..example",
        "ann,bob@acme.example",
        "ann@acme.example;bob@acme.example",
        "ann\x00@acme.example",
        "ann\tlee@acme.example",
        "ann@acme.exam\x7fple",
    ],
)
def test_malformed_address_is_rejected_with_a_reason(raw: str) -> None:
    with pytest.raises(BadEmail) as info:
        normalize_email(raw)
    assert str(info.value)
    assert "\n" not in str(info.value)
    assert not is_valid_email(raw)


def test_overlong_address_is_rejected() -> None:
    local = "a" * 64
    address = f"{local}@{'b' * (MAX_EMAIL_LENGTH - len(local) - 9)}.example"
    assert len(address) == MAX_EMAIL_LENGTH
    assert normalize_email(address) == address
    with pytest.raises(BadEmail, match="longer than 254"):
        normalize_email("x" + address)


def test_error_message_quotes_the_address_briefly() -> None:
    with pytest.raises(BadEmail) as info:
        normalize_email("not an address " + "y" * 200)
    message = str(info.value)
    assert "'not an address y" in message
    assert len(message) < 150


def test_bad_email_is_an_expected_failure() -> None:
    assert issubclass(BadEmail, CalbridgeError)
    assert is_valid_email(" MAILTO:Tom@Harbour.example ")
