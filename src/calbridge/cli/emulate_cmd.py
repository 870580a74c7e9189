"""``calbridge emulate google|graph|ews``: local emulators of the calendar APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run a local emulator of a calendar API (for tests and demos).")

Port = Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1")]
Data = Annotated[Path | None, typer.Option("--data", help="Persist state in this folder")]
FailRate = Annotated[float, typer.Option("--fail-rate", help="Share of requests answered 503")]


@app.command("google")
def google(port: Port = 8765, data: Data = None, fail_rate: FailRate = 0.0) -> None:
    """Serve the Google Calendar API v3 subset calbridge uses."""
    from calbridge.cli.emulate_google import serve

    serve(port=port, data_dir=data, fail_rate=fail_rate)


@app.command("graph")
def graph(
    port: Port = 8766,
    data: Data = None,
    fail_rate: FailRate = 0.0,
    tls: Annotated[bool, typer.Option("--tls", help="Serve https (MSAL needs it)")] = False,
) -> None:
    """Serve the Microsoft Graph v1.0 calendar subset calbridge uses."""
    from calbridge.cli.emulate_graph import serve

    serve(port=port, data_dir=data, fail_rate=fail_rate, tls=tls)


@app.command("ews")
def ews(
    port: Port = 8767,
    tls: Annotated[
        bool, typer.Option("--tls", help="Serve https (self-signed CA printed)")
    ] = False,
    exchange: Annotated[str, typer.Option("--exchange", help="Server version: 2016|2019")] = "2016",
) -> None:
    """Serve Exchange Web Services (Exchange Server 2016/2019) for one demo mailbox."""
    from calbridge_emulators.ews.server import serve

    serve(port=port, tls=tls, version=exchange)
