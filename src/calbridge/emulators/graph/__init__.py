"""A local emulator of the Microsoft Graph v1.0 calendar API (plus the identity platform's
client-credentials endpoints) for testing the Graph connector over real HTTP.

Entry points: :func:`calbridge.emulators.graph.testing.running_emulator` (tests),
:class:`calbridge.emulators.graph.emulator.GraphEmulator` (state + controls),
:func:`calbridge.emulators.graph.app.create_app` (ASGI app),
:mod:`calbridge.emulators.graph.timezones` (Windows <-> IANA zone table).
"""

from .emulator import GraphEmulator

__all__ = ["GraphEmulator"]
