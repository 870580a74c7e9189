"""Exchange Server on-premises over EWS (exchangelib): ``http`` (the exchangelib connection:
settings, sign-in, TLS trust, counting, retries, errors), ``mapping`` (items <-> neutral values),
``provider`` (pull and push), ``kind`` (the registry entry).

:func:`open_ews` builds the provider for a stored calendar."""

from __future__ import annotations

from typing import Any

from calbridge.providers.retry import RetryPolicy


def open_ews(
    name: str,
    settings: dict[str, Any],
    secret: dict[str, Any],
    *,
    adding: bool = False,
    retry: RetryPolicy | None = None,
) -> Any:
    """The provider of a stored Exchange calendar: ``settings`` (see
    :class:`~calbridge.providers.ews.http.EwsSettings`, plus an optional ``retry``) and
    the opened ``secret`` (``password``)."""
    from calbridge.providers.ews.http import EwsConnection, EwsSettings
    from calbridge.providers.ews.provider import EwsProvider

    if retry is None:
        retry = RetryPolicy.from_settings(settings.get("retry"))
    connection = EwsConnection(
        EwsSettings.from_dict(settings),
        str(secret.get("password") or ""),
        name,
        adding=adding,
        retry=retry,
    )
    return EwsProvider(connection)
