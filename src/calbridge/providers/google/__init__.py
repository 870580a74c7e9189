"""Google Calendar behind the provider protocol: ``provider`` (the connector), ``api`` (the
google-api-python-client service and batches), ``auth`` / ``consent`` (service account and OAuth),
``mapping`` / ``series`` (Event JSON ⇄ neutral values), ``writes`` (inserts, patches, deletes),
``watch`` and ``notify`` (push channels and what a notification triggers)."""
