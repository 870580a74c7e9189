"""One subpackage per calendar API (``caldav/``, ``google/``, ``graph/``, ``ews/``), each behind
the provider protocol of ``domain/`` and registered in :mod:`.registry`; shared iCalendar code in
``ical/``; plumbing several APIs use stays here: ``http_client`` (httpx clients with the
project's TLS and timeouts), ``retry`` (tenacity back-off honouring Retry-After) and
``window_token`` (a sync token stamped with the window it was opened over).

Inside a provider folder, the parts an API has carry the same module names everywhere:

* ``kind`` — the registry entry: typed settings, CLI options, connect/open;
* ``auth`` — credentials and sign-in;
* ``http`` — the transport: counted, retried requests and API failures turned into calbridge
  errors;
* ``mapping`` — the API's event shape ⇄ the neutral values of ``domain/remote.py``;
* ``pull`` — reading what changed, when it is more than the provider's own loop;
* ``writes`` — creates, updates, deletes and batches, when large enough to stand alone;
* ``notify`` — push: channels or subscriptions, and what a notification triggers in the service;
* ``provider`` — the class behind the ``CalendarProvider`` protocol that glues them.

Any other module is named after the API's own concept (``caldav.xml``, ``google.series``,
``google.consent``, ``graph.cache``, ``graph.subscriptions``).
"""
