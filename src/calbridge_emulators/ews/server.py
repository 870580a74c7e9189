"""Run the EWS emulator with uvicorn (HTTP or HTTPS) in a background thread or blocking, and
a handle for tests and the demo (:func:`running_emulator`)."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from calbridge_emulators.graph.tls import ServerTls, make_server_tls

from .app import create_app
from .auth import Authenticator
from .store import Organisation


class EwsServer:
    def __init__(
        self,
        org: Organisation,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        tls_dir: Path | None = None,
    ) -> None:
        self.org = org
        self.auth = Authenticator(org)
        self.host = host
        self.tls: ServerTls | None = None
        if tls:
            self.tls = make_server_tls(tls_dir or Path(tempfile.mkdtemp(prefix="ews-emulator-")))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(org, self.auth),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(self.tls.cert_path) if self.tls else None,
            ssl_keyfile=str(self.tls.key_path) if self.tls else None,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ews_url(self) -> str:
        return f"{self.base_url}/EWS/Exchange.asmx"

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="ews-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("EWS emulator failed to start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # clients' idle keep-alive connections do not hold it up
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


@contextmanager
def running_emulator(
    *, tls: bool = False, version: str = "2016", tls_dir: Path | None = None
) -> Iterator[EwsServer]:
    """An emulator serving on a free local port for the duration of the block."""
    server = EwsServer(Organisation(version), tls=tls, tls_dir=tls_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


DEMO_MAILBOX = "bookings@harbour.example"
DEMO_ACCOUNT = ("svc-calbridge", "demo-password")


def seed_demo(org: Organisation) -> None:
    """The demo organisation: the venue's bookings mailbox and a service account that may
    impersonate it (idempotent)."""
    if org.mailbox(DEMO_MAILBOX) is None:
        org.add_mailbox(DEMO_MAILBOX, "Harbour Bookings")
    if org.account(DEMO_ACCOUNT[0]) is None:
        org.add_account(*DEMO_ACCOUNT, impersonates=(DEMO_MAILBOX,))


def serve(port: int, tls: bool = False, version: str = "2016", host: str = "127.0.0.1") -> None:
    """``calbridge emulate ews``: serve until interrupted, after one start-up line naming the
    URL, the mailbox and the account to sign in with."""
    org = Organisation(version)
    seed_demo(org)
    server = EwsServer(org, host=host, port=port, tls=tls)
    ca = f" ca={server.tls.ca_path}" if server.tls else ""
    print(
        f"EWS emulator (Exchange {version}) listening on {server.ews_url} "
        f"(mailbox {DEMO_MAILBOX}, username {DEMO_ACCOUNT[0]}, password {DEMO_ACCOUNT[1]}, "
        f"auth ntlm|basic, impersonation allowed{ca})",
        flush=True,
    )
    server.run()
