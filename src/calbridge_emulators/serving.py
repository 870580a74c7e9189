"""An emulator's HTTP(S) server: uvicorn on a socket bound up front (so the port is known
before it serves, ``port=0`` picks a free one), in a background thread or blocking."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Literal

import uvicorn

from calbridge_emulators.graph.tls import ServerTls


class BackgroundServer:
    """Subclasses call :meth:`_listen` with their ASGI app; ``label`` names the emulator in
    its thread and in a failed start; ``force_exit_on_stop``: stop without waiting for
    clients' idle keep-alive connections."""

    label = "emulator"
    force_exit_on_stop = False
    host: str
    port: int
    tls: ServerTls | None

    def _listen(
        self, app: Any, host: str, port: int, lifespan: Literal["on", "off"] = "off"
    ) -> None:
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted sockets: avoids Nagle/delayed-ACK stalls (~40 ms a response).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
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
        name = self.label.lower().replace(" ", "-")
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} failed to start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.force_exit_on_stop:
            self.server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
