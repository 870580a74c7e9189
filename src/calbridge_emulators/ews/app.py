"""The ASGI app: ``POST /EWS/Exchange.asmx`` (SOAP 1.1) and the SOAP Autodiscover service
``POST /autodiscover/autodiscover.svc`` (``GetUserSettings``, see ``autodiscover.py``), both
behind Basic/NTLM sign-in, and a small unauthenticated control API (``/_emulator/calls``) for
benchmarks.

Faults injected on the organisation (``Organisation.inject``) are served before the operation
runs: ``busy`` → an ``ErrorServerBusy`` SOAP fault carrying ``BackOffMilliseconds``; ``503`` →
HTTP 503 (as IIS does when the app pool recycles); ``sync_state`` → the mailbox forgets its sync
states, so the next ``SyncFolderItems`` answers ``ErrorInvalidSyncStateData``.

``GetStreamingEvents`` is answered as Exchange does: one HTTP response, chunked, carrying one
SOAP envelope after another on the open connection — the events of the named subscriptions as
they happen, a ``ConnectionStatus`` ``OK`` heartbeat while nothing does, and ``Closed`` once
the connection timeout the client asked for (or ``stream_cap_seconds``) is over. An unknown or
expired subscription is an ``ErrorSubscriptionNotFound`` message naming it in
``ErrorSubscriptionIds``. :meth:`Organisation.drop_streams` cuts open streams mid-response.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import autodiscover
from .auth import Authenticator, AuthFailed
from .operations import ItemError, Operations, Request, SoapFault, StreamRefused
from .schema import SOAP, envelope, fault
from .store import Account, Organisation

XML = "text/xml; charset=utf-8"
STREAM_TICK = 0.05  # how often an open stream looks for new events


class StreamDropped(Exception):
    """Raised inside a streaming response to cut the connection (a network drop)."""


def create_app(org: Organisation, auth: Authenticator) -> Starlette:
    operations = Operations(org)

    def sign_in(request: HttpRequest) -> Account | Response:
        """The account signed in on this request, or the 401 to answer."""
        client = request.scope.get("client") or ("?", 0)
        connection = (str(client[0]), int(client[1]))
        try:
            return auth.authenticate(request.headers.get("authorization", ""), connection)
        except AuthFailed as exc:
            response = Response(b"", status_code=401)
            for value in exc.challenge:
                response.headers.append("WWW-Authenticate", value)
            return response

    async def ews(request: HttpRequest) -> Response:
        org.http_requests += 1
        account = sign_in(request)
        if isinstance(account, Response):
            return account
        body = await request.body()
        try:
            parsed = ET.fromstring(body)
            soap = Request(org, account, parsed)
        except ET.ParseError:
            return Response(
                fault("ErrorSchemaValidation", "The request is not well-formed XML.", org.version),
                500,
                media_type=XML,
            )
        except SoapFault as exc:
            return Response(fault(exc.code, exc.message, org.version), 500, media_type=XML)
        target = soap.impersonated or account.mailbox or ""
        org.calls.append((soap.operation, target))
        injected = org.take_fault(soap.operation)
        if injected is not None:
            if injected.kind == "503":
                return PlainTextResponse("Service Unavailable", 503)
            if injected.kind == "busy":
                return Response(
                    fault(
                        "ErrorServerBusy",
                        "The server cannot service this request right now. Try again later.",
                        org.version,
                        back_off_ms=injected.back_off_ms,
                    ),
                    500,
                    media_type=XML,
                )
            if injected.kind == "sync_state":
                box = org.mailbox(target)
                if box is not None:
                    box.forget_sync_states()
        if soap.operation == "GetStreamingEvents":
            return streaming(soap)
        try:
            answer = operations.handle(soap)
        except SoapFault as exc:
            return Response(fault(exc.code, exc.message, org.version), 500, media_type=XML)
        except ItemError as exc:  # a request-wide item error (e.g. the mailbox itself)
            return Response(fault(exc.code, exc.message, org.version), 500, media_type=XML)
        return Response(envelope(answer, org.version), 200, media_type=XML)

    def streaming(soap: Request) -> Response:
        try:
            subscriptions, minutes = operations.streaming_subscriptions(soap)
        except StreamRefused as exc:
            refused = operations.streaming_error(exc)
            return Response(envelope(refused, org.version), 200, media_type=XML)
        except SoapFault as exc:
            return Response(fault(exc.code, exc.message, org.version), 500, media_type=XML)
        limit = float(minutes * 60)
        if org.stream_cap_seconds is not None:
            limit = min(limit, org.stream_cap_seconds)
        drops = org.drops
        with org.lock:
            for found in subscriptions:
                found.streams += 1

        async def body() -> AsyncIterator[bytes]:
            loop = asyncio.get_running_loop()
            started = beat = loop.time()
            try:
                first = operations.streaming_message(subscriptions, "OK")
                if first is not None:
                    yield envelope(first, org.version)
                while True:
                    await asyncio.sleep(STREAM_TICK)
                    now = loop.time()
                    if org.drops != drops:
                        raise StreamDropped("the emulator dropped this stream")
                    if any(org.subscription(s.id) is not s for s in subscriptions):
                        closed = operations.streaming_message(subscriptions, "Closed")
                        if closed is not None:
                            yield envelope(closed, org.version)
                        return
                    if now - started >= limit:
                        closed = operations.streaming_message(subscriptions, "Closed")
                        if closed is not None:
                            yield envelope(closed, org.version)
                        return
                    status = "OK" if now - beat >= org.heartbeat_seconds else None
                    message = operations.streaming_message(subscriptions, status)
                    if message is not None:
                        beat = now
                        yield envelope(message, org.version)
            finally:
                with org.lock:
                    for found in subscriptions:
                        found.streams -= 1
                        found.last_served = datetime.now(UTC)

        return StreamingResponse(body(), 200, media_type=XML)

    async def autodiscover_svc(request: HttpRequest) -> Response:
        """The SOAP Autodiscover service (``autodiscover.py``); a client's unauthenticated
        probe (HEAD/GET/POST) gets the 401 offering the sign-ins, as IIS answers it."""
        org.http_requests += 1
        account = sign_in(request)
        if isinstance(account, Response):
            return account
        if request.method != "POST":
            return PlainTextResponse("Method Not Allowed", 405)
        try:
            parsed = ET.fromstring(await request.body())
            body = parsed.find(f"{{{SOAP}}}Body")
            if body is None:
                raise autodiscover.NotGetUserSettings("The request has no SOAP Body.")
            ews_url = f"{request.url.scheme}://{request.url.netloc}/EWS/Exchange.asmx"
            answer, users = autodiscover.user_settings(org, body, ews_url)
        except ET.ParseError:
            return Response(
                fault("ErrorSchemaValidation", "The request is not well-formed XML.", org.version),
                500,
                media_type=XML,
            )
        except autodiscover.NotGetUserSettings as exc:
            return Response(
                fault("ErrorInvalidRequest", str(exc), org.version), 500, media_type=XML
            )
        for user in users:
            org.calls.append(("GetUserSettings", user))
        return Response(
            autodiscover.envelope(answer, org.version, "GetUserSettingsResponse"),
            200,
            media_type=XML,
        )

    async def calls(request: HttpRequest) -> Response:
        """Control API (local test tool, unauthenticated): SOAP operations served so far, by
        name; ``POST`` resets the tally."""
        if request.method == "POST":
            org.calls.clear()
            org.http_requests = 0
        tally: dict[str, int] = {}
        for operation, _mailbox in list(org.calls):
            tally[operation] = tally.get(operation, 0) + 1
        return JSONResponse({"operations": tally, "http_requests": org.http_requests})

    async def not_exchange(request: HttpRequest) -> Response:
        return PlainTextResponse("Not Found", 404)

    return Starlette(
        routes=[
            Route("/EWS/Exchange.asmx", ews, methods=["POST"]),
            Route("/ews/exchange.asmx", ews, methods=["POST"]),
            Route(
                "/autodiscover/autodiscover.svc",
                autodiscover_svc,
                methods=["POST", "GET", "HEAD"],
            ),
            Route(
                "/Autodiscover/Autodiscover.svc",
                autodiscover_svc,
                methods=["POST", "GET", "HEAD"],
            ),
            Route("/_emulator/calls", calls, methods=["GET", "POST"]),
            Route("/{path:path}", not_exchange, methods=["GET", "POST"]),
        ]
    )
