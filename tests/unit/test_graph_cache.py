"""MSAL's state as kept between runs: JSON only, discovery answers only, and anything that
cannot be read back (another MSAL version, a damaged value) is dropped, never an error."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from msal.individual_cache import _ExpiringMapping as ExpiringMapping
from msal.throttled_http_client import NormalizedResponse

from calbridge.providers.graph.cache import MsalState

DISCOVERY = "GET https://login.example/tenant/v2.0/.well-known/openid-configuration hash=x 2xx"
THROTTLED = "POST https://login.example/tenant/oauth2/v2.0/token client_id=c 429/5xx/Retry-After"


def answer(status: int, text: str) -> NormalizedResponse:
    raw = SimpleNamespace(status_code=status, text=text, headers={"Content-Type": "json"})
    return NormalizedResponse(raw)


def test_discovery_answers_survive_a_json_round_trip_and_throttling_entries_do_not() -> None:
    state = MsalState()
    mapping = ExpiringMapping(mapping=state.http, capacity=1024)
    mapping.set(DISCOVERY, answer(200, '{"token_endpoint": "t"}'), 3600)
    mapping.set(THROTTLED, answer(429, "slow down"), 60)
    saved = json.loads(json.dumps(state.to_json()))  # what the sealed secret holds

    again = MsalState()
    again.load(saved)
    restored = ExpiringMapping(mapping=again.http, capacity=1024)
    assert restored.get(DISCOVERY).text == '{"token_endpoint": "t"}'
    assert restored.get(DISCOVERY).status_code == 200
    assert restored.get(THROTTLED) is None


@pytest.mark.parametrize(
    "damaged",
    [None, "x", [], {"tokens": 5, "http": "x"}, {"tokens": "{not json", "http": {"responses": 1}}],
)
def test_a_damaged_state_is_dropped(damaged: object) -> None:
    state = MsalState()
    state.load(damaged)
    assert state.to_json()["http"]["responses"] == {}
