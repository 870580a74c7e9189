"""Starlette ASGI app: identity endpoints at the root (``{login_base}`` = the server's base URL,
so MSAL's authority is ``{base}/{tenant}``), Graph under ``/v1.0`` and the control API under
``/_emulator`` (JSON, unauthenticated - a local test tool)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api import GraphRequest
from .auth import AadError
from .emulator import GraphEmulator
from .util import GraphError, error_body, new_guid

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def create_app(emu: GraphEmulator) -> Starlette:
    async def openid(request: Request) -> Response:
        emu.counters.inc("total")
        emu.counters.inc("discovery")
        try:
            body = emu.auth.openid_configuration(_base(request), request.path_params["tenant"])
        except AadError as exc:
            return JSONResponse(exc.body(emu.clock.now()), exc.status)
        return JSONResponse(body)

    async def keys(request: Request) -> Response:
        emu.counters.inc("total")
        emu.counters.inc("discovery")
        return JSONResponse(emu.auth.jwks())

    async def instance_discovery(request: Request) -> Response:
        emu.counters.inc("total")
        emu.counters.inc("discovery")
        host = request.url.netloc
        auth = request.query_params.get("authorization_endpoint", "")
        tenant = auth.split("/")[3] if auth.count("/") > 3 else "common"
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{_base(request)}/{tenant}/v2.0/.well-known/"
                "openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            }
        )

    async def token(request: Request) -> Response:
        emu.counters.inc("total")
        emu.counters.inc("token")
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        basic = None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            basic = header[6:].strip()
        try:
            body = emu.auth.token(_base(request), request.path_params["tenant"], form, basic)
        except AadError as exc:
            return JSONResponse(exc.body(emu.clock.now()), exc.status)
        except (ValueError, UnicodeDecodeError):
            err = AadError(400, "invalid_request", 900144, "Malformed request.")
            return JSONResponse(err.body(emu.clock.now()), 400)
        return JSONResponse(body, headers={"Cache-Control": "no-store, no-cache"})

    async def graph(request: Request) -> Response:
        emu.counters.inc("total")
        raw = await request.body()
        body: Any = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                rid = new_guid()
                err = error_body(
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type "
                    "header is set and payload is of valid JSON format.",
                    rid,
                    headers.get("client-request-id", rid),
                    emu.clock.now(),
                )
                return JSONResponse(err, 400)
        req = GraphRequest(
            method=request.method.upper(),
            path="/" + request.path_params["path"],
            query={k.lower(): v for k, v in request.query_params.items()},
            headers=headers,
            body=body,
            base_url=_base(request),
        )
        resp = await emu.graph(req)
        out_headers = {"Cache-Control": "private", **resp.headers}
        if resp.body is None:
            return Response(status_code=resp.status, headers=out_headers)
        content = json.dumps(resp.body, ensure_ascii=False).encode()
        return Response(content, resp.status, out_headers, media_type=ODATA_JSON)

    # control API -------------------------------------------------------------
    async def control(request: Request) -> Response:
        op = request.path_params["op"]
        raw = await request.body()
        data: dict[str, Any] = json.loads(raw) if raw else {}
        try:
            result = _control(emu, request.method, op, data)
        except (KeyError, ValueError, GraphError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(result)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        yield
        emu.subscriptions.stop()
        emu.save()

    routes = [
        Route("/_emulator/{op:path}", control, methods=["GET", "POST", "DELETE"]),
        Route("/v1.0/{path:path}", graph, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
        Route("/common/discovery/instance", instance_discovery, methods=["GET"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _control(emu: GraphEmulator, method: str, op: str, data: dict[str, Any]) -> Any:
    """``/_emulator/<op>`` JSON control endpoints (mirror the Python handle)."""
    if op == "state" and method == "GET":
        with emu.store.lock:
            return {
                "tenants": [vars(t) for t in emu.store.tenants.values()],
                "apps": [
                    {
                        "client_id": a.client_id,
                        "tenant_id": a.tenant_id,
                        "roles": a.roles,
                        "mailboxes": a.mailboxes,
                    }
                    for a in emu.store.apps.values()
                ],
                "users": [
                    {
                        "id": u.id,
                        "upn": u.upn,
                        "tenant_id": u.tenant_id,
                        "calendars": [
                            {"id": c.id, "name": c.name, "events": len(c.items)}
                            for c in u.calendars.values()
                        ],
                    }
                    for u in emu.store.users.values()
                ],
            }
    if op == "seed" and method == "POST":
        return emu.seed_default()
    if op == "tenants" and method == "POST":
        return vars(emu.add_tenant(data.get("domain", "contoso.onmicrosoft.com"), data.get("id")))
    if op == "apps" and method == "POST":
        app = emu.add_app(
            data["tenant"],
            data.get("client_id"),
            data.get("secret"),
            data.get("certificate_pem"),
            data.get("roles", ["Calendars.ReadWrite"]),
            data.get("mailboxes"),
        )
        return {"client_id": app.client_id, "tenant_id": app.tenant_id}
    if op == "users" and method == "POST":
        user = emu.add_user(data["tenant"], data["upn"], data.get("display_name"), data.get("id"))
        return {"id": user.id, "upn": user.upn, "default_calendar_id": user.default_calendar_id}
    if op == "calendars" and method == "POST":
        cal = emu.add_calendar(data["user"], data["name"])
        return {"id": cal.id, "name": cal.name}
    if op == "faults" and method == "POST":
        rule = emu.fail_next(
            int(data.get("count", 1)),
            int(data.get("status", 429)),
            data.get("method"),
            data.get("path"),
            data.get("retry_after", 1),
            data.get("code"),
            data.get("message"),
            data.get("scope", "any"),
        )
        return {"id": rule.id}
    if op == "faults" and method == "DELETE":
        emu.clear_faults()
        return {}
    if op == "fail-rate" and method == "POST":
        emu.set_fail_rate(float(data["rate"]), int(data.get("seed", 0)))
        return {}
    if op == "delta/invalidate" and method == "POST":
        emu.invalidate_delta_tokens(data.get("user"), data.get("calendar"))
        return {}
    if op == "counters" and method == "GET":
        return emu.counter_snapshot()
    if op == "counters/reset" and method == "POST":
        emu.reset_counters()
        return {}
    if op == "clock/advance" and method == "POST":
        emu.advance_clock(float(data["seconds"]))
        return {}
    if op == "notifications" and method == "GET":
        return emu.notifications
    if op == "save" and method == "POST":
        emu.save()
        return {}
    if op == "events" and method == "POST":
        return emu.external_create(data["user"], data["event"], data.get("calendar"))
    raise KeyError(f"unknown control operation {method} {op}")
