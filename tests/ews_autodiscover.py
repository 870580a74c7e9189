"""Helpers for testing EWS autodiscover end to end (CLI and REST API tests share them).

exchangelib first tries ``https://DOMAIN/autodiscover/autodiscover.svc`` — port 443, the
operating system's resolver, TLS verification — after checking the host name with dnspython.
So: :func:`serve_on_443` runs the EWS emulator's TLS listener on 127.0.0.1:443 (its test CA's
certificate is valid for ``localhost``) or skips the test saying why (not root, or the port is
taken by another run); :func:`stub_dns` points exchangelib's documented resolver settings
(``Autodiscovery.DNS_RESOLVER_ATTRS``) at a local stub answering :data:`RECORDS` (NXDOMAIN for
anything else); :func:`private_cache` keeps exchangelib's autodiscover cache (memory and disk)
to the test and closes exchangelib's cached connections around it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from calbridge_emulators.ews.server import EwsServer
from calbridge_emulators.ews.store import Organisation

RECORDS = {
    ("localhost.", "A"): "127.0.0.1",
    ("_autodiscover._tcp.harbour.example.", "SRV"): "0 0 443 localhost.",
}
DISCOVERED = "https://localhost/EWS/Exchange.asmx"


@contextmanager
def serve_on_443(tls_dir: Path, version: str = "2019") -> Iterator[EwsServer]:
    try:
        org = Organisation(version)
        server = EwsServer(org, host="127.0.0.1", port=443, tls=True, tls_dir=tls_dir)
    except PermissionError as exc:
        pytest.skip(f"autodiscover end to end needs port 443: run the tests as root ({exc})")
    except OSError as exc:
        pytest.skip(f"autodiscover end to end needs port 443, which is taken ({exc})")
    server.start()
    try:
        yield server
    finally:
        from exchangelib import close_connections

        close_connections()  # no keep-alive connection outlives this server
        server.stop()


@contextmanager
def stub_dns(
    monkeypatch: pytest.MonkeyPatch, records: dict[tuple[str, str], str] | None = None
) -> Iterator[list[str]]:
    """Yields the questions asked (``"localhost. A"``); ``records`` (default
    :data:`RECORDS`) are the names it answers, NXDOMAIN for anything else."""
    known = RECORDS if records is None else records
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
    from exchangelib.autodiscover import Autodiscovery

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()
    asked: list[str] = []

    def answer() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            kind = dns.rdatatype.to_text(question.rdtype)
            asked.append(f"{question.name} {kind}")
            record = known.get((str(question.name), kind))
            if record is not None:
                reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, record))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    attrs = {
        **Autodiscovery.DNS_RESOLVER_ATTRS,
        "nameservers": ["127.0.0.1"],
        "port": sock.getsockname()[1],
    }
    monkeypatch.setattr(Autodiscovery, "DNS_RESOLVER_ATTRS", attrs)
    try:
        yield asked
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@contextmanager
def private_cache(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Also closes exchangelib's cached connections before and after: a keep-alive connection
    to an earlier emulator on port 443 (same URL, same sign-in) must not be reused."""
    from exchangelib import close_connections
    from exchangelib.autodiscover import cache

    close_connections()
    monkeypatch.setattr(cache, "AUTODISCOVER_PERSISTENT_STORAGE", folder / "ad-cache")
    try:
        yield
    finally:
        close_connections()
