"""Google Calendar behind the provider protocol: ``provider`` (the connector, and the pull),
``http`` (the google-api-python-client service, single calls and batches, errors), ``auth`` /
``consent`` (service account and OAuth, the counted and retrying transport), ``mapping`` /
``series`` (Event JSON ⇄ neutral values; whole series re-read), ``writes`` (inserts, patches,
deletes), ``notify`` (watch channels and what a notification triggers), ``kind`` (the registry
entry)."""
