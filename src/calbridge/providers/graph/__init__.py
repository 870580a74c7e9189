"""Microsoft Graph (Microsoft 365 / Exchange Online) behind the provider protocol: ``provider``
(the connector, pull and push), ``auth`` (MSAL) and ``cache`` (MSAL's state kept between runs),
``http`` (the counted, retrying session and ``$batch``), ``mapping`` (event JSON ⇄ neutral
values), ``subscriptions`` (Graph's subscription resource, validation, clientState) and
``notify`` (what the service does with them), ``kind`` (the registry entry). Delta tokens carry
their window (:mod:`calbridge.providers.window_token`, shared with EWS)."""
