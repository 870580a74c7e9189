"""What MSAL lets a command-line program keep between runs, as plain JSON to be sealed.

Each ``calbridge`` run is a new process. Without help MSAL would, in every run, fetch the
tenant's OpenID configuration (tenant discovery) and request a new token before the one Graph
call a no-change sync needs: three requests where the budget is two. MSAL offers two caches a
CLI may persist: the token cache (:class:`msal.SerializableTokenCache`, JSON) and the
``http_cache`` for its discovery responses (any mapping; MSAL's own recipe pickles it). We keep
both in the calendar's sealed secret, as JSON — never pickle — holding only successful GETs
(discovery documents, public) and MSAL's expiry index for them; the throttling entries MSAL
also keeps there (for 429/5xx/400 answers) are per-process and not persisted.

Anything that cannot be read back (another MSAL version, a damaged value) is dropped: MSAL
then simply asks again, as MSAL's documentation recommends.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from types import SimpleNamespace
from typing import Any

import msal

INDEX = "_index_"  # msal.individual_cache._ExpiringMapping keeps its expiry index under this key


def _response_from_json(data: dict[str, Any]) -> Any:
    from msal.throttled_http_client import NormalizedResponse

    raw = SimpleNamespace(
        status_code=int(data["status_code"]), text=str(data["text"]), headers=dict(data["headers"])
    )
    return NormalizedResponse(raw)


class HttpCache(MutableMapping[str, Any]):
    """The mapping MSAL stores its ``http_cache`` entries in, exportable as JSON."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_json(self) -> dict[str, Any]:
        """The successful GET answers (discovery documents) and their expiry index."""
        sequence, stamps = self._data.get(INDEX, ([], {}))
        keep = {
            key
            for key in stamps
            if key.startswith("GET ") and key in self._data and _status(self._data[key]) < 300
        }
        responses = {
            key: {
                "status_code": self._data[key].status_code,
                "text": self._data[key].text,
                "headers": dict(self._data[key].headers),
            }
            for key in sorted(keep)
        }
        return {
            "responses": responses,
            "sequence": [list(entry) for entry in sequence if entry[2] in keep],
            "stamps": {key: list(stamps[key]) for key in sorted(keep)},
        }

    def load_json(self, data: Any) -> None:
        """Replace the contents with what :meth:`to_json` produced; ignore what is unreadable."""
        self._data.clear()
        try:
            responses = {
                key: _response_from_json(value) for key, value in data["responses"].items()
            }
            sequence = [[int(e[0]), int(e[1]), str(e[2])] for e in data["sequence"]]
            stamps = {str(k): [int(v[0]), int(v[1])] for k, v in data["stamps"].items()}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, ImportError):
            return
        self._data.update(responses)
        self._data[INDEX] = (sequence, stamps)


def _status(response: Any) -> int:
    return int(getattr(response, "status_code", 999))


class MsalState:
    """The token cache and discovery cache of one MSAL application."""

    def __init__(self) -> None:
        self.tokens = msal.SerializableTokenCache()
        self.http = HttpCache()

    def load(self, data: Any) -> None:
        """Restore what :meth:`to_json` saved (``None`` or anything unreadable: start empty)."""
        if not isinstance(data, dict):
            return
        try:
            if isinstance(data.get("tokens"), str):
                self.tokens.deserialize(data["tokens"])
        except ValueError:
            self.tokens = msal.SerializableTokenCache()
        self.http.load_json(data.get("http"))

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens.serialize(), "http": self.http.to_json()}
