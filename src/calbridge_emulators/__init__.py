"""Test doubles and local servers for calbridge, outside the product package: faithful Google
Calendar (``google/``), Microsoft Graph (``graph/``) and Exchange Web Services (``ews/``)
emulators, and helpers that start real CalDAV servers (``radicale``, ``caldav_servers``).
Installed with the ``emulators`` extra; reached from the product only through
``calbridge emulate`` and ``calbridge demo``."""
