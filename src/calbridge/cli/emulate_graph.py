"""``calbridge emulate graph``: run the Microsoft Graph calendar emulator (blocking)."""

from __future__ import annotations

from pathlib import Path

from calbridge_emulators.graph.emulator import GraphEmulator
from calbridge_emulators.graph.server import EmulatorServer


def serve(
    port: int,
    data_dir: Path | None,
    fail_rate: float,
    host: str = "127.0.0.1",
    tls: bool = False,
) -> None:
    """Serve the emulator on ``host:port`` until interrupted.

    A default tenant/app/mailbox is seeded (idempotent) and its credentials are printed on the
    single start-up line; more can be added through ``POST /_emulator/...``.  With ``data_dir``
    the state is persisted as JSON there (and the TLS material under ``data_dir/tls``).
    MSAL needs ``tls=True`` (https authority); clients then verify with the printed CA file.
    """
    emulator = GraphEmulator(data_dir=data_dir, fail_rate=fail_rate)
    creds = emulator.seed_default()
    tls_dir = data_dir / "tls" if (tls and data_dir is not None) else None
    server = EmulatorServer(emulator, host=host, port=port, tls=tls, tls_dir=tls_dir)
    ca = f" ca={server.tls.ca_path}" if server.tls else ""
    print(
        f"Graph emulator listening on {server.base_url} (graph {server.base_url}/v1.0, "
        f"authority {server.base_url}/{creds['tenant_id']}, client_id={creds['client_id']}, "
        f"client_secret={creds['client_secret']}, user={creds['user']}{ca})",
        flush=True,
    )
    try:
        server.run()
    finally:
        emulator.close()
