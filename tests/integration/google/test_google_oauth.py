"""One person connects their Google calendar: the installed-app (loopback) consent flow.

The emulator plays Google's consent page and token endpoint; the test plays the person's
browser: it reads the consent URL that `calbridge calendars auth NAME --no-browser` prints, GETs
it with httpx and follows Google's redirect to the loopback address the command listens on.
Real google-auth-oauthlib builds the URL and exchanges the code; real google-auth refreshes the
token at sync time.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from google_world import GoogleWorld, timed
from sqlalchemy import select

from calbridge.providers.google.auth import OAuthClient, read_oauth_client
from calbridge.providers.google.consent import run_consent_flow
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge_cli import CALBRIDGE, Cli, CliResult, make_inprocess_cli
from calbridge_emulators.google.consent import s256
from calbridge_emulators.google.testing import CALENDAR_SCOPE, EmulatorHandle

READONLY = "https://www.googleapis.com/auth/calendar.readonly"
PERSON = "mia@harbour.example"
VERIFIER = "v" * 43 + "-._~0123456789"
START = datetime(2027, 3, 1, 9)


# ---------------------------------------------------------------- the person and calbridge


@dataclass
class Desk:
    """calbridge's database and data directory, the CLI on them, and the emulator."""

    world: GoogleWorld
    data_dir: Path
    database_url: str
    cli: Cli
    tmp_path: Path

    @property
    def gcal(self) -> EmulatorHandle:
        return self.world.gcal

    def link(self, name: str, email: str = PERSON) -> str:
        """`calendars add NAME --google ID --oauth-client FILE`: linked, not yet authorized."""
        calendar_id = self.gcal.add_user(email)
        client = self.gcal.write_oauth_client(self.tmp_path / f"{name}-client.json")
        added = self.cli(
            "calendars", "add", name, "--google", calendar_id,
            "--oauth-client", str(client), "--api-base", self.gcal.base_url,
        )  # fmt: skip
        assert added.code == 0, added.err
        return calendar_id

    def auth(
        self, name: str, *options: str, browse: bool = True
    ) -> tuple[CliResult, httpx.Response | None]:
        """`calbridge calendars auth NAME --no-browser` in a subprocess; the test is the
        browser: it opens the printed URL and follows Google's redirect."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CALBRIDGE_", "OAUTHLIB_"))}
        env |= {
            "CALBRIDGE_DATA_DIR": str(self.data_dir),
            "CALBRIDGE_DATABASE_URL": self.database_url,
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
        command = [CALBRIDGE, "calendars", "auth", name, "--no-browser", "--timeout", "20"]
        with subprocess.Popen(
            [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            printed: list[str] = []
            page = None
            for line in process.stdout:
                printed.append(line)
                if line.startswith("http"):
                    if browse:
                        page = httpx.get(line.strip(), follow_redirects=True, timeout=20)
                    break
            out, err = process.communicate(timeout=40)
        return CliResult(process.returncode, "".join(printed) + out, err), page

    def secret(self, name: str) -> dict[str, Any]:
        """The calendar's sealed secret, opened with the CLI's key."""
        box = SecretBox((self.data_dir / "secret.key").read_bytes().strip())
        with self.world.store.session() as session:
            row = session.scalars(select(Calendar).where(Calendar.name == name)).one()
            assert row.secret is not None
            return box.open(row.secret, name)


@pytest.fixture
def desk(world: GoogleWorld, tmp_path: Path) -> Desk:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = str(world.store.engine.url.render_as_string(hide_password=False))
    return Desk(world, data_dir, url, make_inprocess_cli(data_dir, url), tmp_path)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_consent_in_the_browser_stores_the_refresh_token_sealed_and_sync_uses_it(
    desk: Desk,
) -> None:
    calendar_id = desk.link("mine")
    desk.gcal.seed_events(
        calendar_id, [{"summary": "Mia's tasting", **timed(START, START + timedelta(hours=1))}]
    )
    desk.gcal.set_consent(PERSON)
    done, page = desk.auth("mine")
    assert done.code == 0, done.err
    assert page is not None and page.status_code == 200 and "received Google's answer" in page.text
    assert str(page.url).startswith("http://127.0.0.1:")  # the command's loopback address
    assert "Authorized calendar 'mine'" in done.out
    [issued] = desk.gcal.emulator.store.refresh_tokens.values()
    assert issued.principal == PERSON and desk.secret("mine")["refresh_token"] == issued.token
    assert issued.token.encode() not in (desk.tmp_path / "calbridge.db").read_bytes()  # sealed
    synced = desk.cli("sync", "mine", "--json")
    assert synced.code == 0, synced.out + synced.err
    [report] = synced.json()
    assert report["ok"] and report["created"] == 1, report


def test_declined_consent_is_a_one_line_error_and_stores_nothing(desk: Desk) -> None:
    desk.link("mine")
    desk.gcal.set_consent(PERSON, granted=False)
    done, page = desk.auth("mine")
    assert done.code != 0
    assert page is not None and "not authorized" in page.text
    message = one_line(done.err)
    assert "calendar 'mine' (Google): access was declined" in message
    assert "nothing was stored" in message and "`calbridge calendars auth mine`" in message
    assert "refresh_token" not in desk.secret("mine")


def test_grant_without_calendar_scope_is_refused_and_stores_nothing(desk: Desk) -> None:
    desk.link("mine")
    desk.gcal.set_consent(PERSON, scopes=[READONLY])
    done, _ = desk.auth("mine")
    assert done.code != 0
    message = one_line(done.err)
    assert "does not include calendar access" in message and CALENDAR_SCOPE in message
    assert f"granted: {READONLY}" in message and "`calbridge calendars auth mine`" in message
    assert "refresh_token" not in desk.secret("mine")


def test_authorized_user_file_without_calendar_scope_is_refused_and_stores_nothing(
    desk: Desk,
) -> None:
    desk.link("mine")
    client, _ = read_oauth_client(
        json.loads((desk.tmp_path / "mine-client.json").read_text()), "client"
    )
    token = desk.gcal.emulator.store.issue_refresh_token(client.client_id, PERSON, [READONLY])
    user_file = desk.tmp_path / "user.json"
    user_file.write_text(
        json.dumps({"type": "authorized_user", **client.as_dict(), "refresh_token": token})
    )
    done = desk.cli("calendars", "auth", "mine", "--authorized-user", str(user_file))
    assert done.code != 0
    message = one_line(done.err)
    assert "does not include calendar access" in message
    assert "`calbridge calendars auth mine`" in message
    assert "refresh_token" not in desk.secret("mine")


def test_revoked_grant_fails_that_calendars_sync_only_and_names_the_fix(desk: Desk) -> None:
    desk.link("mine")
    desk.gcal.set_consent(PERSON)
    assert desk.auth("mine")[0].code == 0
    venue = desk.gcal.add_user("venue@harbour.example")
    desk.gcal.seed_events(
        venue, [{"summary": "Harbour gala", **timed(START, START + timedelta(hours=3))}]
    )
    key = desk.gcal.write_service_account_key(desk.tmp_path / "key.json")
    added = desk.cli(
        "calendars", "add", "venue", "--google", venue, "--service-account", str(key),
        "--subject", "venue@harbour.example", "--api-base", desk.gcal.base_url,
    )  # fmt: skip
    assert added.code == 0, added.err
    desk.gcal.emulator.revoke(PERSON)
    synced = desk.cli("sync", "--json")
    assert synced.code != 0
    reports = {r["calendar"]: r for r in synced.json()}
    assert not reports["mine"]["ok"]
    error = reports["mine"]["error"]
    assert "calendar 'mine' (Google)" in error and "revoked" in error
    assert "`calbridge calendars auth mine`" in error
    assert reports["venue"]["ok"] and reports["venue"]["created"] == 1
    desk.gcal.set_consent(PERSON)  # the fix the message names
    assert desk.auth("mine")[0].code == 0
    again = desk.cli("sync", "mine", "--json")
    assert again.code == 0, again.out


def test_no_answer_from_the_browser_is_a_clear_error(desk: Desk) -> None:
    desk.link("mine")
    done, _ = desk.auth("mine", "--timeout", "1", browse=False)
    assert done.code != 0
    message = one_line(done.err)
    assert "no answer from Google's consent page within 1 s" in message
    assert "refresh_token" not in desk.secret("mine")


def test_stray_requests_to_the_loopback_address_do_not_end_the_flow(gcal: EmulatorHandle) -> None:
    gcal.add_user(PERSON)
    gcal.set_consent(PERSON)
    entry = gcal.oauth_client_info()["installed"]
    client = OAuthClient(
        entry["client_id"], entry["client_secret"], entry["token_uri"], entry["auth_uri"]
    )
    seen: list[httpx.Response] = []
    visitors: list[threading.Thread] = []

    def browser(url: str, opened: bool) -> None:
        def visit() -> None:
            redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
            seen.append(httpx.get(redirect_uri + "favicon.ico"))
            seen.append(httpx.get(redirect_uri + "?" + urlencode({"code": "x", "state": "forged"})))
            seen.append(httpx.get(url, follow_redirects=True))

        visitors.append(threading.Thread(target=visit, daemon=True))
        visitors[-1].start()

    token = run_consent_flow(client, "mine", show=browser, open_browser=False, timeout=20)
    # The flow ends once the receiver has answered the third request; the "browser" may still
    # be reading that answer: wait for it to finish before looking at what it saw.
    [visitor] = visitors
    visitor.join(timeout=30)
    assert not visitor.is_alive(), "the browser thread did not finish within 30 s"
    assert [r.status_code for r in seen] == [404, 400, 200]
    assert gcal.emulator.store.refresh_tokens[token].principal == PERSON
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ  # allowed for the flow only


# ---------------------------------------------------------------- Google's side, as emulated

LOOPBACK = "http://127.0.0.1:8765/"


@pytest.fixture
def client(gcal: EmulatorHandle) -> dict[str, str]:
    """A registered "Desktop app" client; PERSON is signed in at the browser and allows."""
    gcal.add_user(PERSON)
    gcal.set_consent(PERSON)
    installed: dict[str, str] = gcal.oauth_client_info()["installed"]
    return installed


def consent_request(client: dict[str, str], **changes: str | None) -> dict[str, str]:
    query: dict[str, str | None] = {
        "client_id": client["client_id"],
        "redirect_uri": LOOPBACK,
        "response_type": "code",
        "scope": CALENDAR_SCOPE,
        "state": "s-1",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "access_type": "offline",
    }
    query.update(changes)
    return {k: v for k, v in query.items() if v is not None}


def consent(gcal: EmulatorHandle, query: dict[str, str]) -> httpx.Response:
    return httpx.get(gcal.auth_uri, params=query)


def answer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {k: v[-1] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def code_for(gcal: EmulatorHandle, client: dict[str, str]) -> str:
    return answer(consent(gcal, consent_request(client)))["code"]


def redeem(
    gcal: EmulatorHandle, client: dict[str, str], auth_code: str, **changes: str | None
) -> httpx.Response:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": auth_code,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "redirect_uri": LOOPBACK,
        "code_verifier": VERIFIER,
    }
    form.update(changes)
    return httpx.post(gcal.token_uri, data={k: v for k, v in form.items() if v is not None})


def user_credentials(gcal: EmulatorHandle, client: dict[str, str], token: str) -> Credentials:
    return Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=token,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        token_uri=gcal.token_uri,
        scopes=[CALENDAR_SCOPE],
    )


def refresh(gcal: EmulatorHandle, client: dict[str, str], token: str) -> None:
    """What google-auth does before an API call: the refresh_token grant."""
    user_credentials(gcal, client, token).refresh(Request())  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    "redirect_uri", ["http://127.0.0.1:8765/", "http://localhost:8765", "http://[::1]:8765/cb"]
)
def test_consent_page_sends_the_browser_back_to_a_loopback_address_with_code_and_state(
    gcal: EmulatorHandle, client: dict[str, str], redirect_uri: str
) -> None:
    response = consent(gcal, consent_request(client, redirect_uri=redirect_uri))
    assert response.headers["location"].startswith(redirect_uri)
    params = answer(response)
    assert params["state"] == "s-1" and params["code"].startswith("4/")
    assert params["scope"] == CALENDAR_SCOPE


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_id": "404-nobody.apps.googleusercontent.com"}, 401, "invalid_client"),
        ({"client_id": None}, 400, "invalid_request"),
        ({"redirect_uri": "https://calbridge.example/callback"}, 400, "redirect_uri_mismatch"),
        ({"redirect_uri": "http://calbridge.example:8765/"}, 400, "redirect_uri_mismatch"),
        ({"redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}, 400, "invalid_request"),
        ({"redirect_uri": None}, 400, "invalid_request"),
        ({"response_type": "token"}, 400, "unsupported_response_type"),
        ({"scope": None}, 400, "invalid_request"),
        ({"scope": "https://www.googleapis.com/auth/drive"}, 400, "invalid_scope"),
        ({"code_challenge_method": "S512"}, 400, "invalid_request"),
        ({"code_challenge": "too-short"}, 400, "invalid_request"),
        ({"code_challenge": None}, 400, "invalid_request"),  # a method without a challenge
    ],
)
def test_consent_page_refuses_a_bad_request_on_its_own_page_without_redirecting(
    gcal: EmulatorHandle,
    client: dict[str, str],
    change: dict[str, str | None],
    status: int,
    error: str,
) -> None:
    response = consent(gcal, consent_request(client, **change))
    assert response.status_code == status and "location" not in response.headers
    assert f"Error {status}: {error}" in response.text


def test_person_who_cancels_is_sent_back_with_access_denied_and_the_state(
    gcal: EmulatorHandle, client: dict[str, str]
) -> None:
    gcal.set_consent(PERSON, granted=False)
    assert answer(consent(gcal, consent_request(client))) == {
        "error": "access_denied",
        "state": "s-1",
    }


def test_login_hint_picks_who_answers_the_consent_page(
    gcal: EmulatorHandle, client: dict[str, str]
) -> None:
    gcal.set_consent("tom@harbour.example", granted=False)  # now signed in at the browser
    hinted = answer(consent(gcal, consent_request(client, login_hint=PERSON)))
    body = redeem(gcal, client, hinted["code"]).json()
    assert gcal.emulator.store.refresh_tokens[body["refresh_token"]].principal == PERSON


def test_code_is_exchanged_once_for_tokens_the_client_libraries_use(
    gcal: EmulatorHandle, client: dict[str, str]
) -> None:
    code = code_for(gcal, client)
    first = redeem(gcal, client, code)
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert (body["scope"], body["token_type"], body["expires_in"]) == (
        CALENDAR_SCOPE,
        "Bearer",
        3599,
    )
    service = gcal.build_service(user_credentials(gcal, client, body["refresh_token"]))
    assert service.events().list(calendarId=PERSON).execute()["kind"] == "calendar#events"
    again = redeem(gcal, client, code)
    assert again.json() == {"error": "invalid_grant", "error_description": "Bad Request"}


@pytest.mark.parametrize(
    ("change", "status", "error", "description"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", "Unauthorized"),
        ({"client_secret": None}, 400, "invalid_request", "client_secret is missing."),
        ({"client_id": "404-nobody.apps.googleusercontent.com"}, 401, "invalid_client",
         "The OAuth client was not found."),
        ({"redirect_uri": "http://127.0.0.1:9999/"}, 400, "redirect_uri_mismatch", "Bad Request"),
        ({"code_verifier": None}, 400, "invalid_grant", "Missing code verifier."),
        ({"code_verifier": "w" * 43}, 400, "invalid_grant", "Invalid code verifier."),
        ({"code": "4/0Anonsense"}, 400, "invalid_grant", "Malformed auth code."),
    ],
)  # fmt: skip
def test_token_endpoint_refuses_a_code_exchange_that_breaks_a_rule(
    gcal: EmulatorHandle,
    client: dict[str, str],
    change: dict[str, str | None],
    status: int,
    error: str,
    description: str,
) -> None:
    response = redeem(gcal, client, code_for(gcal, client), **change)
    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}


def test_code_expires_after_ten_minutes(gcal: EmulatorHandle, client: dict[str, str]) -> None:
    code = code_for(gcal, client)
    gcal.emulator.advance_clock(601)
    try:
        response = redeem(gcal, client, code)
    finally:
        gcal.emulator.advance_clock(-601)
    assert response.json() == {"error": "invalid_grant", "error_description": "Bad Request"}


def test_client_may_authenticate_with_http_basic(
    gcal: EmulatorHandle, client: dict[str, str]
) -> None:
    form = {
        "grant_type": "authorization_code",
        "code": code_for(gcal, client),
        "redirect_uri": LOOPBACK,
        "code_verifier": VERIFIER,
    }
    credentials = (client["client_id"], client["client_secret"])
    response = httpx.post(gcal.token_uri, data=form, auth=credentials)
    assert response.status_code == 200 and "refresh_token" in response.json()


def test_revoked_refresh_token_stays_dead_after_the_person_consents_again(
    gcal: EmulatorHandle, client: dict[str, str]
) -> None:
    old = redeem(gcal, client, code_for(gcal, client)).json()["refresh_token"]
    gcal.emulator.revoke(PERSON)
    with pytest.raises(RefreshError, match="invalid_grant"):
        refresh(gcal, client, old)
    new = redeem(gcal, client, code_for(gcal, client)).json()["refresh_token"]
    refresh(gcal, client, new)
    with pytest.raises(RefreshError, match="invalid_grant"):
        refresh(gcal, client, old)


def test_control_api_registers_a_desktop_client_and_sets_who_consents(
    gcal: EmulatorHandle,
) -> None:
    nobody = httpx.get(gcal.auth_uri, params=consent_request(gcal.oauth_client_info()["installed"]))
    assert nobody.status_code == 400 and "set_consent" in nobody.text
    made = httpx.post(f"{gcal.control_url}/oauth-clients", json={}).json()["installed"]
    assert (made["auth_uri"], made["token_uri"]) == (gcal.auth_uri, gcal.token_uri)
    assert made["redirect_uris"] == ["http://localhost"] and made["client_secret"]
    httpx.post(f"{gcal.control_url}/consent", json={"email": PERSON, "granted": False})
    assert answer(consent(gcal, consent_request(made)))["error"] == "access_denied"
