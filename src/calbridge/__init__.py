"""calbridge: keep an event-booking system in two-way sync with staff calendars."""

from __future__ import annotations

from functools import cache


@cache
def installed_version() -> str:
    """The installed distribution's version (the source tree's when it is not installed);
    read once per process (``calbridge --version``, the quiet marks of ``sync/quick.py``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("calbridge")
    except PackageNotFoundError:
        return "0+unknown"
