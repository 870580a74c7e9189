"""The test servers themselves: once stopped, nothing of them is left answering."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from calbridge_emulators.caldav_servers import davical_missing, running_davical


def test_a_stopped_davical_leaves_no_php_worker_answering(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    problem = davical_missing()
    if problem:
        pytest.skip(f"DAViCal not available: {problem}")
    postgres = str(request.getfixturevalue("postgres_server_url"))
    with running_davical(tmp_path / "davical", {"staff": "staff-pw"}, postgres) as server:
        url = server.url + "/caldav.php/"
        assert httpx.request("OPTIONS", url, timeout=10).status_code < 500
    with pytest.raises(httpx.TransportError):
        for _ in range(8):  # more requests than there were workers
            httpx.request("OPTIONS", url, timeout=5)
