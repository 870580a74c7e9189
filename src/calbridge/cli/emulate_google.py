"""``calbridge emulate google``: serve the Google Calendar v3 emulator with uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from calbridge_emulators.google.app import create_app, listening_socket
from calbridge_emulators.google.emulator import GoogleCalendarEmulator


def serve(port: int, data_dir: Path | None, fail_rate: float, host: str = "127.0.0.1") -> None:
    """Run the emulator until interrupted (blocking); prints one line with the base URL.

    With ``data_dir`` the state is loaded from and saved to that folder.  ``fail_rate`` is the
    share of API calls answered with a (seeded) random 503.
    """
    sock = listening_socket(host, port)
    base_url = f"http://{host}:{sock.getsockname()[1]}"
    emulator = GoogleCalendarEmulator(data_dir=data_dir, fail_rate=fail_rate, base_url=base_url)
    print(f"Google Calendar API emulator listening on {base_url}", flush=True)
    config = uvicorn.Config(create_app(emulator), log_level="warning", lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
