"""A local emulator of the Google Calendar API v3 (real HTTP, ASGI), for tests and demos.

Modules: ``app`` (Starlette routes), ``emulator`` (pipeline and controls), ``api`` (handlers),
``events`` / ``resources`` / ``listing`` / ``params`` / ``recurrence`` (event semantics),
``fields`` (partial responses), ``store`` / ``model`` (state and
persistence), ``auth`` (OAuth token endpoint), ``batch``, ``notify`` (watch channels),
``faults`` (scripted errors and counters), ``schema`` (discovery-document validation) and
``testing`` (``running_emulator()`` and credential helpers).
"""

from .emulator import GoogleCalendarEmulator

__all__ = ["GoogleCalendarEmulator"]
