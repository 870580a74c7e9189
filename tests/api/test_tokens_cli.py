"""``calbridge tokens create|list|revoke``: the token is shown once and stored hashed; names
are checked; every expected failure is one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from calbridge.store.db import open_store
from calbridge_cli import make_inprocess_cli


def test_token_is_shown_once_and_only_its_digest_is_stored(tmp_path: Path, sqlite_url: str) -> None:
    cli = make_inprocess_cli(tmp_path / "data", sqlite_url)
    made = cli("tokens", "create", "booking-site")
    assert made.code == 0, made.err
    token = next(line for line in made.out.splitlines() if line.startswith("cbt_"))
    listed = cli("tokens", "list", "--json")
    (entry,) = json.loads(listed.out)
    assert entry["name"] == "booking-site" and entry["read_only"] is False
    assert token not in listed.out and token[:8] == entry["hint"]
    store = open_store(sqlite_url)
    with store.session() as s:
        rows = s.execute(text("SELECT * FROM api_tokens")).all()
    store.dispose()
    assert token not in repr(rows)
    read_only = json.loads(cli("tokens", "create", "wallboard", "--read-only", "--json").out)
    assert read_only["read_only"] is True and read_only["token"].startswith("cbt_")


def test_token_mistakes_are_one_line_errors(tmp_path: Path, sqlite_url: str) -> None:
    cli = make_inprocess_cli(tmp_path / "data", sqlite_url)
    assert cli("tokens", "create", "site").code == 0
    again = cli("tokens", "create", "site")
    assert again.code == 2 and "exists already" in again.err and "Traceback" not in again.err
    bad = cli("tokens", "create", "has space")
    assert bad.code == 2 and "not usable" in bad.err
    missing = cli("tokens", "revoke", "nobody")
    assert missing.code == 1 and "calbridge tokens list" in missing.err
    assert cli("tokens", "revoke", "site").code == 0
    assert json.loads(cli("tokens", "list", "--json").out) == []
