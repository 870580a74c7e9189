"""The REST API tests' client: the app under test, its two tokens' headers, the store and the
job queue (a module with a unique name, so that test modules can import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from calbridge.config import load_settings
from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar

RADICALE_USERS = {"ann": "ann-secret"}


@dataclass
class Api:
    """A client on the app, the tokens' headers, the store and the job queue."""

    client: TestClient
    store: Store
    jobs: Any
    writer: dict[str, str]
    reader: dict[str, str]

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=kw.pop("headers", self.writer), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=kw.pop("headers", self.writer), **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=kw.pop("headers", self.writer), **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers=kw.pop("headers", self.writer), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=kw.pop("headers", self.writer), **kw)

    def count(self, table: str) -> int:
        with self.store.session() as s:
            return int(s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    def add_calendar(self, name: str) -> int:
        """A CalDAV calendar row (not contacted: these tests never sync)."""
        box = SecretBox.from_settings(load_settings())
        with self.store.session() as s:
            cal = add_caldav_calendar(
                s, box, name, f"http://127.0.0.1:9/{name}/", "u", "p", check=False
            )
            return cal.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
