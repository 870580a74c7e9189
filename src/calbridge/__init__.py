"""calbridge: keep an event-booking system in two-way sync with staff calendars."""

from __future__ import annotations

#: The program's version: the package's, as built (``pyproject.toml`` reads it from here).
__version__ = "0.1.0"


def installed_version() -> str:
    """The program's version (``calbridge --version``, the quiet marks of ``sync/quick.py``).
    A constant of the package, not its installed metadata: reading that (with
    ``importlib.metadata``) cost a ``calbridge sync`` with nothing to do about 10 ms."""
    return __version__
