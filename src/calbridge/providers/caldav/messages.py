"""What to run when a CalDAV server refuses a stored calendar's credentials or URL (no
third-party imports: ``calbridge sync``'s quick path uses them before anything else loads)."""

from __future__ import annotations

from shlex import quote


def caldav_fix(name: str, url: str, adding: bool) -> str:
    """What to run when a CalDAV server refuses the stored username or password."""
    if adding:
        return (
            f"check them and run `calbridge calendars add {quote(name)} --caldav {quote(url)} "
            "--username USER --password-env VAR` again"
        )
    return (
        f"check them and run `calbridge calendars update {quote(name)} --password-env VAR` "
        "(with --username USER if the user changed)"
    )


def caldav_url_fix(name: str, adding: bool) -> str:
    """What to run when the stored URL is not a calendar collection the user may use."""
    example = "the calendar's own address, e.g. https://host/dav/user/calendar/"
    if adding:
        return (
            f"run `calbridge calendars add {quote(name)} --caldav URL --username USER "
            f"--password-env VAR` again with {example}"
        )
    return f"run `calbridge calendars update {quote(name)} --caldav URL` with {example}"
