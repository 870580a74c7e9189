"""The ASGI app: ``POST /EWS/Exchange.asmx`` (SOAP 1.1), behind Basic/NTLM sign-in, and a
small unauthenticated control API (``/_emulator/calls``) for benchmarks.

Faults injected on the organisation (``Organisation.inject``) are served before the operation
runs: ``busy`` → an ``ErrorServerBusy`` SOAP fault carrying ``BackOffMilliseconds``; ``503`` →
HTTP 503 (as IIS does when the app pool recycles); ``sync_state`` → the mailbox forgets its sync
states, so the next ``SyncFolderItems`` answers ``ErrorInvalidSyncStateData``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .auth import Authenticator, AuthFailed
from .operations import ItemError, Operations, Request, SoapFault
from .schema import envelope, fault
from .store import Organisation

XML = "text/xml; charset=utf-8"


def create_app(org: Organisation, auth: Authenticator) -> Starlette:
    operations = Operations(org)

    async def ews(request: HttpRequest) -> Response:
        org.http_requests += 1
        client = request.scope.get("client") or ("?", 0)
        connection = (str(client[0]), int(client[1]))
        try:
            account = auth.authenticate(request.headers.get("authorization", ""), connection)
        except AuthFailed as exc:
            headers = [("WWW-Authenticate", value) for value in exc.challenge]
            response = Response(b"", status_code=401)
            for name, value in headers:
                response.headers.append(name, value)
            return response
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
        try:
            answer = operations.handle(soap)
        except SoapFault as exc:
            return Response(fault(exc.code, exc.message, org.version), 500, media_type=XML)
        except ItemError as exc:  # a request-wide item error (e.g. the mailbox itself)
            return Response(fault(exc.code, exc.message, org.version), 500, media_type=XML)
        return Response(envelope(answer, org.version), 200, media_type=XML)

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
            Route("/_emulator/calls", calls, methods=["GET", "POST"]),
            Route("/{path:path}", not_exchange, methods=["GET", "POST"]),
        ]
    )
