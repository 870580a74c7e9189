"""Run the emulator with uvicorn on a pre-bound socket, in a background thread or blocking."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from calbridge_emulators.serving import BackgroundServer

from .app import create_app
from .emulator import GraphEmulator
from .tls import make_server_tls


class EmulatorServer(BackgroundServer):
    label = "Graph emulator"

    def __init__(
        self,
        emulator: GraphEmulator,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        tls_dir: Path | None = None,
    ) -> None:
        self.emulator = emulator
        self.tls = None
        if tls:
            directory = tls_dir or Path(tempfile.mkdtemp(prefix="graph-emulator-tls-"))
            self.tls = make_server_tls(directory)
            self.emulator.subscriptions.verify = ssl.create_default_context(
                cafile=str(self.tls.ca_path)
            )
        self._listen(create_app(emulator), host, port, lifespan="on")
