"""One subpackage per calendar API (``caldav/``, ``google/``, ``graph/``), each behind the provider
protocol of ``domain/``; shared iCalendar code in ``ical/``; plumbing every API uses stays here:
``http_client`` (httpx clients with the project's TLS and timeouts) and ``retry`` (tenacity
back-off honouring Retry-After)."""
