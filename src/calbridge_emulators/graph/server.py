"""Run the emulator with uvicorn on a pre-bound socket, in a background thread or blocking."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from .app import create_app
from .emulator import GraphEmulator
from .tls import ServerTls, make_server_tls


class EmulatorServer:
    def __init__(
        self,
        emulator: GraphEmulator,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        tls_dir: Path | None = None,
    ) -> None:
        self.emulator = emulator
        self.host = host
        self.tls: ServerTls | None = None
        if tls:
            directory = tls_dir or Path(tempfile.mkdtemp(prefix="graph-emulator-tls-"))
            self.tls = make_server_tls(directory)
            self.emulator.subscriptions.verify = ssl.create_default_context(
                cafile=str(self.tls.ca_path)
            )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted sockets: avoids Nagle/delayed-ACK stalls (~40 ms a response).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(emulator),
            log_level="warning",
            access_log=False,
            lifespan="on",
            ssl_certfile=str(self.tls.cert_path) if self.tls else None,
            ssl_keyfile=str(self.tls.key_path) if self.tls else None,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def run(self) -> None:
        """Serve until interrupted (blocking)."""
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="graph-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Graph emulator failed to start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
