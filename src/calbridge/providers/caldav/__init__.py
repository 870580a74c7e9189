"""CalDAV (RFC 4791 / 6578) behind the provider protocol: ``provider`` (the connector),
``pull`` (sync-collection / calendar-query + multiget), ``http`` (the counted, retrying httpx
session), ``xml`` (the streaming multistatus reader). iCalendar mapping is ``providers.ical``."""
