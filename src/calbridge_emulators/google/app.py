"""ASGI (Starlette) application exposing a :class:`GoogleCalendarEmulator` over HTTP.

Paths, as on Google:

* ``/calendar/v3/...`` - the REST API (``client_options={"api_endpoint": <base>/calendar/v3/}``);
* ``/batch/calendar/v3`` - batch endpoint (``rootUrl`` + ``batchPath`` of the discovery doc);
* ``/token`` - OAuth 2.0 token endpoint (``token_uri`` of key files), client credentials in the
  form or HTTP Basic;
* ``/o/oauth2/auth`` (and ``/o/oauth2/v2/auth``) - the consent page of the installed-app flow
  (``auth_uri`` of client files): a 302 back to the app's loopback ``redirect_uri``, or an error
  page;
* ``/discovery/v1/apis/calendar/v3/rest`` - the discovery document re-rooted at the emulator,
  so ``build(..., discoveryServiceUrl=..., static_discovery=False)`` needs no other override.

Control API (JSON, emulator-only) under ``/_emulator/``: ``reset``, ``users``, ``calendars``,
``calendars/{id}/share``, ``service-accounts``, ``authorized-users``, ``oauth-clients``,
``consent``, ``revoke``, ``restore``,
``expire-sync-tokens``, ``expire-access-tokens``, ``clock/advance``, ``faults`` (GET, POST,
DELETE), ``fail-rate``, ``counters`` (GET), ``counters/reset``, ``notifications``, ``save``.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, quote, unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .api import ApiRequest
from .emulator import GoogleCalendarEmulator
from .schema import discovery_document

JSON_TYPE = "application/json; charset=UTF-8"


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return quote(request.scope["path"])


def create_app(emulator: GoogleCalendarEmulator, *, manage_lifecycle: bool = True) -> Starlette:
    """Build the ASGI app; with ``manage_lifecycle`` the lifespan starts/stops the emulator."""

    async def api(request: Request) -> Response:
        req = ApiRequest(
            method=request.method,
            raw_path=_raw_path(request),
            query=parse_qs(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        resp = emulator.handle_api(req)
        if resp.body is None:
            return Response(status_code=resp.status, headers=resp.headers)
        return Response(_json_bytes(resp.body), resp.status, resp.headers, media_type=JSON_TYPE)

    async def rooms(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, body = emulator.rooms_listing(headers)
        return Response(_json_bytes(body), status, media_type=JSON_TYPE)

    async def batch(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, out_headers, payload = emulator.handle_batch(
            headers.get("content-type", ""), await request.body(), headers
        )
        if isinstance(payload, dict):
            return Response(_json_bytes(payload), status, out_headers, media_type=JSON_TYPE)
        return Response(payload, status, out_headers)

    async def token(request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                form = {str(k): str(v) for k, v in json.loads(raw or b"{}").items()}
            except (ValueError, AttributeError):
                form = {}
        else:
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        form = _basic_credentials(request.headers.get("authorization", "")) | form
        status, body = emulator.handle_token(form)
        return Response(_json_bytes(body), status, media_type=JSON_TYPE)

    async def authorize(request: Request) -> Response:
        query = parse_qs(request.url.query, keep_blank_values=True)
        answer = emulator.handle_authorize({k: v[-1] for k, v in query.items()})
        if answer.location is not None:
            return Response(status_code=answer.status, headers={"Location": answer.location})
        return HTMLResponse(answer.page, status_code=answer.status)

    async def discovery(request: Request) -> Response:
        return JSONResponse(discovery_document(emulator.base_url + "/"))

    async def index(request: Request) -> Response:
        return JSONResponse(
            {
                "emulator": "google-calendar-v3",
                "api_endpoint": emulator.api_endpoint,
                "batch_uri": emulator.batch_uri,
                "token_uri": emulator.token_url,
                "auth_uri": f"{emulator.base_url}/o/oauth2/auth",
            }
        )

    control = _control_routes(emulator)

    async def control_endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        key = (request.method, name)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if key in control:
                result = control[key](body)
            elif (
                request.method == "POST"
                and name.startswith("calendars/")
                and name.endswith("/share")
            ):
                cal_id = name[len("calendars/") : -len("/share")]
                emulator.share_calendar(cal_id, body["email"], body.get("role", "writer"))
                result = {}
            else:
                return JSONResponse({"error": f"unknown control {key}"}, status_code=404)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": repr(exc)}, status_code=400)
        return JSONResponse(result if result is not None else {})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            emulator.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                emulator.close()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/calendar/v3/{rest:path}", api, methods=methods),
            Route("/batch/calendar/v3", batch, methods=["POST"]),
            Route(
                "/admin/directory/v1/customer/{customer}/resources/calendars",
                rooms,
                methods=["GET"],
            ),
            Route("/token", token, methods=["POST"]),
            Route("/o/oauth2/auth", authorize, methods=["GET"]),
            Route("/o/oauth2/v2/auth", authorize, methods=["GET"]),
            Route("/discovery/v1/apis/calendar/v3/rest", discovery, methods=["GET"]),
            Route("/_emulator/{name:path}", control_endpoint, methods=methods),
        ],
        lifespan=lifespan,
    )


def _control_routes(emu: GoogleCalendarEmulator) -> dict[tuple[str, str], Callable[[Any], Any]]:
    def users(b: dict[str, Any]) -> Any:
        return {
            "calendar_id": emu.add_user(
                b["email"], display_name=b.get("display_name"), time_zone=b.get("time_zone", "UTC")
            )
        }

    def calendars(b: dict[str, Any]) -> Any:
        cid = emu.add_calendar(
            b["owner"],
            b["summary"],
            time_zone=b.get("time_zone", "UTC"),
            calendar_id=b.get("calendar_id"),
            description=b.get("description"),
        )
        return {"calendar_id": cid}

    def service_accounts(b: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {k: b[k] for k in ("delegation", "delegation_scopes") if k in b}
        if "email" in b:
            kwargs["email"] = b["email"]
        return emu.create_service_account(**kwargs)

    def faults(b: dict[str, Any]) -> Any:
        allowed = ("count", "method", "path", "reason", "message", "retry_after", "on")
        return emu.inject_fault(int(b["status"]), **{k: b[k] for k in allowed if k in b}).to_json()

    def noarg(fn: Callable[[], Any]) -> Callable[[Any], Any]:
        return lambda _b: fn()

    return {
        ("POST", "reset"): noarg(emu.reset),
        ("POST", "users"): users,
        ("POST", "calendars"): calendars,
        ("POST", "service-accounts"): service_accounts,
        ("POST", "authorized-users"): lambda b: emu.create_authorized_user(
            b["email"], list(b.get("scopes", ["https://www.googleapis.com/auth/calendar"]))
        ),
        ("POST", "oauth-clients"): lambda b: emu.create_oauth_client(b.get("client_id")),
        ("POST", "consent"): lambda b: emu.set_consent(
            b["email"], bool(b.get("granted", True)), b.get("scopes")
        ),
        ("POST", "revoke"): lambda b: emu.revoke(b["principal"]),
        ("POST", "restore"): lambda b: emu.restore(b["principal"]),
        ("POST", "expire-sync-tokens"): lambda b: emu.expire_sync_tokens(b.get("calendar_id")),
        ("POST", "expire-access-tokens"): noarg(emu.expire_access_tokens),
        ("POST", "clock/advance"): lambda b: emu.advance_clock(float(b["seconds"])),
        ("GET", "faults"): lambda _b: [r.to_json() for r in emu.faults.rules],
        ("POST", "faults"): faults,
        ("DELETE", "faults"): noarg(emu.clear_faults),
        ("POST", "fail-rate"): lambda b: emu.set_fail_rate(float(b["rate"]), b.get("seed")),
        ("GET", "counters"): noarg(emu.request_counts),
        ("POST", "counters/reset"): noarg(emu.reset_counters),
        ("GET", "notifications"): lambda _b: list(emu.notifier.deliveries),
        ("POST", "save"): lambda _b: {"path": str(emu.save() or "")},
        ("GET", "health"): lambda _b: {"ok": True},
    }


def _basic_credentials(header: str) -> dict[str, str]:
    """``client_id``/``client_secret`` from ``Authorization: Basic`` (RFC 6749 §2.3.1)."""
    if header[:6].lower() != "basic ":
        return {}
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return {}
    client_id, _, secret = decoded.partition(":")
    return {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(secret)}


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for ``uvicorn.Server.run(sockets=[...])``.

    Created with ``proto=IPPROTO_TCP`` and ``TCP_NODELAY``: asyncio only disables Nagle on
    accepted sockets whose ``proto`` is TCP, and without that every small response waits for the
    client's delayed ACK (~40 ms per request).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock
