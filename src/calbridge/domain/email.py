"""Email address normalisation: the one way addresses are compared everywhere.

SPEC §2: addresses compare trimmed and case-insensitively; iCalendar organizers carry a
``mailto:`` prefix that is stripped. We deliberately do not apply provider-specific rules
(dots or ``+tags`` in Gmail addresses): two spellings are the same booker only when they are
the same address.
"""

from __future__ import annotations

import re

from calbridge.errors import BadEmail

MAX_EMAIL_LENGTH = 254
_PART = r"[^@\s<>()\[\],;:\"\x00-\x1f\x7f]+"  # no separators, spaces or control characters
_ADDRESS = re.compile(rf"^{_PART}@{_PART}\.{_PART}$")


def normalize_email(raw: str) -> str:
    """Return ``raw`` trimmed, without ``mailto:``, lower-cased; raise BadEmail if malformed."""
    value = raw.strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :].strip()
    value = value.lower()
    if not value:
        raise BadEmail("empty email address")
    if len(value) > MAX_EMAIL_LENGTH:
        raise BadEmail(f"email address longer than {MAX_EMAIL_LENGTH} characters")
    if not _ADDRESS.match(value) or ".." in value.split("@", 1)[1]:
        raise BadEmail(f"'{raw.strip()[:80]}' is not a valid email address")
    return value


def is_valid_email(raw: str) -> bool:
    try:
        normalize_email(raw)
    except BadEmail:
        return False
    return True
