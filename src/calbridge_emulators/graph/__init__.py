"""A local emulator of the Microsoft Graph v1.0 calendar API (plus the identity platform's
client-credentials endpoints) for testing the Graph connector over real HTTP.

Entry points: :func:`calbridge_emulators.graph.testing.running_emulator` (tests),
:class:`calbridge_emulators.graph.emulator.GraphEmulator` (state + controls),
:func:`calbridge_emulators.graph.app.create_app` (ASGI app),
:mod:`calbridge_emulators.graph.timezones` (Windows <-> IANA zone table).
"""

from .emulator import GraphEmulator

__all__ = ["GraphEmulator"]
