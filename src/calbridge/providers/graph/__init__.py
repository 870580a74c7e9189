"""Microsoft Graph (Microsoft 365 / Exchange Online) behind the provider protocol: ``provider``
(the connector), ``auth`` (MSAL), ``http`` (the counted, retrying session and ``$batch``),
``delta`` (calendarView delta tokens), ``mapping`` (event JSON ⇄ neutral values),
``subscriptions`` and ``notify`` (change notifications and what one triggers)."""
