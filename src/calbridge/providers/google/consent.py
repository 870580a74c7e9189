"""The installed-app consent flow: how one person lets calbridge use their Google calendar.

Google's loopback IP address flow (OAuth 2.0 for desktop apps; RFC 8252): calbridge listens on
``http://127.0.0.1:PORT/``, the person opens Google's consent page in a browser, and Google
sends the browser back to that address with an authorization code, or with
``error=access_denied`` when the person clicks Cancel. The code and the PKCE verifier buy a
refresh token, which the caller seals.

``google_auth_oauthlib.flow.Flow`` builds the consent URL (``state``, PKCE ``S256``) and
exchanges the code. Only the local receiver is calbridge's own, because
``InstalledAppFlow.run_local_server`` takes the first request it gets, whatever it is (a
favicon fetch ends the flow), tells the browser "completed" when the person clicked Cancel,
waits forever by default, and prints the URL with an unflushed ``print`` that never shows when
stdout is a pipe.
"""

from __future__ import annotations

import html
import os
import time
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from calbridge.errors import ConfigError, ProviderAuthError, ProviderError
from calbridge.providers.google.auth import CALENDAR_SCOPE, OAuthClient

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
INSECURE_TRANSPORT = "OAUTHLIB_INSECURE_TRANSPORT"

Show = Callable[[str, bool], None]  # (consent URL, whether a browser was opened for it)


def run_consent_flow(
    client: OAuthClient,
    name: str,
    *,
    show: Show,
    open_browser: bool = True,
    port: int = 0,
    timeout: float = 300,
) -> str:
    """Ask the person for calendar access on Google's consent page; returns the refresh token.

    ``show`` tells the person where to go. Raises :class:`ProviderAuthError` when they decline,
    when no answer comes within ``timeout`` seconds, when Google refuses the code, or when the
    grant lacks calendar access: nothing is returned, so nothing gets stored."""
    from google_auth_oauthlib.flow import Flow

    label = f"calendar '{name}' (Google)"
    flow = Flow.from_client_config(client.flow_config(), scopes=[CALENDAR_SCOPE])
    try:
        receiver = _Receiver(port)
    except OSError as exc:
        raise ConfigError(
            f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror}); give another port, "
            "or 0 for any free one"
        ) from exc
    with receiver, _plain_http_on_loopback(client):
        flow.redirect_uri = receiver.redirect_uri
        url, receiver.state = flow.authorization_url(access_type="offline", prompt="consent")
        opened = open_browser and _open(url)
        show(url, opened)
        answer = receiver.wait(timeout)
        if answer is None:
            raise ProviderAuthError(
                f"{label}: no answer from Google's consent page within {timeout:g} s; nothing "
                f"was stored. Run `calbridge calendars auth {name}` again and finish in the "
                "browser"
            )
        if "code" not in answer:
            raise _declined(label, name, answer)
        token = _exchange(flow, answer["code"], label, name)
    return _refresh_token(token, label, name)


def _declined(label: str, name: str, answer: dict[str, str]) -> ProviderAuthError:
    error = answer.get("error", "no code")
    if error == "access_denied":
        return ProviderAuthError(
            f"{label}: access was declined on Google's consent page; nothing was stored. Run "
            f"`calbridge calendars auth {name}` again and choose Allow"
        )
    detail = answer.get("error_description", "")
    return ProviderAuthError(
        f"{label}: Google's consent page answered {error}{': ' + detail if detail else ''}; "
        f"nothing was stored. Run `calbridge calendars auth {name}` again"
    )


def _exchange(flow: Any, code: str, label: str, name: str) -> dict[str, Any]:
    """The code (and PKCE verifier) for tokens, at the client's ``token_uri``."""
    import requests
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    try:
        return dict(flow.fetch_token(code=code))
    except Warning as changed:  # oauthlib: the grant's scope is not the one asked for
        token = getattr(changed, "token", None)
        if token is None:
            raise
        return dict(token)
    except OAuth2Error as exc:
        raise ProviderAuthError(
            f"{label}: Google refused the authorization code ({exc.error}: {exc.description}); "
            f"nothing was stored. Run `calbridge calendars auth {name}` again"
        ) from exc
    except requests.RequestException as exc:
        raise ProviderError(
            f"{label}: cannot reach Google's token endpoint {flow.client_config['token_uri']} "
            f"({type(exc).__name__}); nothing was stored. Try "
            f"`calbridge calendars auth {name}` again"
        ) from exc


def _refresh_token(token: dict[str, Any], label: str, name: str) -> str:
    granted = token.get("scope") or []
    scopes = granted.split() if isinstance(granted, str) else [str(s) for s in granted]
    if CALENDAR_SCOPE not in scopes:
        raise ProviderAuthError(
            f"{label}: the access granted does not include calendar access ({CALENDAR_SCOPE}; "
            f"granted: {' '.join(scopes) or 'nothing'}); nothing was stored. Run "
            f"`calbridge calendars auth {name}` again and allow access to your calendars"
        )
    refresh = token.get("refresh_token")
    if not refresh:
        raise ProviderAuthError(
            f"{label}: Google granted access but returned no refresh token; remove calbridge's "
            "access at https://myaccount.google.com/permissions and run "
            f"`calbridge calendars auth {name}` again"
        )
    return str(refresh)


def _open(url: str) -> bool:
    try:
        return webbrowser.open(url, new=1, autoraise=True)
    except webbrowser.Error:
        return False


def _is_loopback(uri: str) -> bool:
    return urlsplit(uri).hostname in LOOPBACK_HOSTS


@contextmanager
def _plain_http_on_loopback(client: OAuthClient) -> Iterator[None]:
    """oauthlib refuses plain-HTTP endpoints unless ``OAUTHLIB_INSECURE_TRANSPORT`` is set.
    Google's are HTTPS; a local emulator's are plain HTTP on loopback, allowed for the flow's
    duration only. Plain HTTP anywhere else is refused."""
    plain = [u for u in (client.auth_uri, client.token_uri) if urlsplit(u).scheme == "http"]
    if not plain:
        yield
        return
    if not all(_is_loopback(u) for u in plain):
        raise ConfigError(
            f"the OAuth client's endpoints must use HTTPS ({', '.join(plain)}); download the "
            "client file again from the Google Cloud console"
        )
    previous = os.environ.get(INSECURE_TRANSPORT)
    os.environ[INSECURE_TRANSPORT] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(INSECURE_TRANSPORT, None)
        else:
            os.environ[INSECURE_TRANSPORT] = previous


class _Receiver(HTTPServer):
    """The loopback address Google sends the browser back to. Keeps the first answer that
    carries this flow's ``state``; anything else gets a 4xx and the wait goes on."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _RedirectHandler)
        self.state = ""
        self.answer: dict[str, str] | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/"

    def wait(self, timeout: float) -> dict[str, str] | None:
        deadline = time.monotonic() + timeout
        while self.answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.timeout = min(left, 1.0)
            self.handle_request()
        return self.answer


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _Receiver
    timeout = 10  # a connection that sends nothing (a browser's preconnect) is dropped

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path != "/" or not {"code", "error"} & params.keys():
            self._page(404, "Not found", "This address only takes Google's answer for calbridge.")
        elif params.get("state") != self.server.state:
            self._page(
                400, "Not this sign-in", "This answer is for another sign-in; nothing was done."
            )
        elif "code" in params:
            self.server.answer = params
            self._page(200, "calbridge received Google's answer", "You can close this tab.")
        else:
            self.server.answer = params
            error = params.get("error", "")
            self._page(200, "calbridge was not authorized", f"Google answered {error}.")

    def _page(self, status: int, title: str, text: str) -> None:
        body = (
            f"<!doctype html><title>{html.escape(title, quote=False)}</title>"
            f"<h1>{html.escape(title, quote=False)}</h1>"
            f"<p>{html.escape(text, quote=False)} The terminal tells what happened next.</p>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return
