"""Run the EWS emulator with uvicorn (HTTP or HTTPS) in a background thread or blocking, and
a handle for tests and the demo (:func:`running_emulator`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from calbridge_emulators.graph.tls import make_server_tls
from calbridge_emulators.serving import BackgroundServer

from .app import create_app
from .auth import Authenticator
from .store import Organisation


class EwsServer(BackgroundServer):
    label = "EWS emulator"
    force_exit_on_stop = True  # clients' idle keep-alive connections do not hold it up

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
        self.tls = None
        if tls:
            self.tls = make_server_tls(tls_dir or Path(tempfile.mkdtemp(prefix="ews-emulator-")))
        self._listen(create_app(org, self.auth), host, port, lifespan="off")

    @property
    def ews_url(self) -> str:
        return f"{self.base_url}/EWS/Exchange.asmx"


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
