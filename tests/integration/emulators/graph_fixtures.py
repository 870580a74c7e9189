"""pytest fixtures for the Graph emulator (imported by test modules; no conftest needed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from calbridge_emulators.graph.testing import GraphEmulatorHandle, running_emulator


@pytest.fixture(scope="module")
def graph_emulator() -> Iterator[GraphEmulatorHandle]:
    """A plain-http emulator shared by a test module (tests isolate via fresh mailboxes)."""
    with running_emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def graph_tls_emulator() -> Iterator[GraphEmulatorHandle]:
    """An https emulator (needed by MSAL, which only accepts https authorities)."""
    with running_emulator(tls=True) as handle:
        yield handle


@pytest.fixture()
def mailbox(graph_emulator: GraphEmulatorHandle) -> str:
    """A fresh mailbox (UPN) in the default tenant."""
    upn = f"user-{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com"
    graph_emulator.add_user(graph_emulator.tenant_id, upn, "Test User")
    return upn


@pytest.fixture()
def graph_http(graph_emulator: GraphEmulatorHandle) -> Iterator[httpx.Client]:
    """httpx client against ``/v1.0`` with a valid app token."""
    client = graph_emulator.graph_client(timeout=30)
    yield client
