"""JSON batching: ``POST /v1.0/$batch``.

Emulated (Graph "Combine multiple HTTP requests using JSON batching"): body
``{"requests": [{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}]}``, at most 20
requests (more -> 400 for the whole batch), ids unique (else 400), a request with a body must
carry a ``Content-Type`` header (else 400 "Write request id : X does not contain Content-Type
header or body."), unknown ``dependsOn`` ids -> 400.  The batch answers 200 with
``{"responses": [{"id", "status", "headers", "body"}]}``; each inner request runs through the
normal pipeline (its own status, fault injection and throttling, counted as ``batch_inner``)
with the outer request's token.  Requests run sequentially in ``dependsOn`` order; a request
whose dependency failed answers 424 Failed Dependency.  Optional ``batch_mailbox_limit`` on the
emulator makes requests beyond N per mailbox in one batch answer 429 ``ApplicationThrottled``
("Application is over its MailboxConcurrency limit."), which is how Exchange treats more than 4
concurrent requests to one mailbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .api import GraphRequest, GraphResponse
from .util import GraphError

if TYPE_CHECKING:
    from .emulator import GraphEmulator

MAX_REQUESTS = 20


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _order(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []
    pending = list(requests)
    while pending:
        progress = False
        for request in list(pending):
            deps = {str(d).lower() for d in request.get("dependsOn") or []}
            if deps <= done:
                ordered.append(request)
                done.add(str(request["id"]).lower())
                pending.remove(request)
                progress = True
        if not progress:
            raise _bad("The dependsOn graph of the batch contains a cycle.")
    return ordered


async def run_batch(emu: GraphEmulator, outer: GraphRequest) -> GraphResponse:
    if outer.method != "POST":
        raise GraphError(405, "BadRequest", "Batch requests must use POST.")
    body = outer.body
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _bad("Invalid batch payload format.")
    requests: list[dict[str, Any]] = body["requests"]
    if not requests:
        raise _bad("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise _bad(f"The number of requests in a batch exceeds the limit of {MAX_REQUESTS}.")
    ids: set[str] = set()
    for request in requests:
        if not isinstance(request, dict) or not all(
            request.get(k) for k in ("id", "method", "url")
        ):
            raise _bad("Invalid batch payload format.")
        rid = str(request["id"]).lower()
        if rid in ids:
            raise _bad(f"Batch request id '{request['id']}' is not unique.")
        ids.add(rid)
        headers = {str(k).lower(): v for k, v in (request.get("headers") or {}).items()}
        if request.get("body") is not None and "content-type" not in headers:
            raise _bad(
                f"Write request id : {request['id']} does not contain Content-Type header or body."
            )
    for request in requests:
        for dep in request.get("dependsOn") or []:
            if str(dep).lower() not in ids:
                raise _bad(f"Request id '{dep}' referenced in dependsOn was not found.")
    emu.counters.inc("batch")
    statuses: dict[str, int] = {}
    responses: dict[str, dict[str, Any]] = {}
    per_mailbox: dict[str, int] = {}
    for request in _order(requests):
        rid = str(request["id"])
        failed_deps = [
            d for d in request.get("dependsOn") or [] if statuses.get(str(d).lower(), 200) >= 400
        ]
        if failed_deps:
            statuses[rid.lower()] = 424
            responses[rid] = {
                "id": rid,
                "status": 424,
                "headers": {},
                "body": {"error": {"code": "FailedDependency", "message": "Failed dependency."}},
            }
            continue
        parts = urlsplit(str(request["url"]))
        path = parts.path
        for prefix in ("/v1.0", "v1.0"):
            if path.lower().startswith(prefix + "/"):
                path = path[len(prefix) :]
        if not path.startswith("/"):
            path = "/" + path
        headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
        inner = GraphRequest(
            method=str(request["method"]).upper(),
            path=path,
            query={k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)},
            headers=headers,
            body=request.get("body"),
            base_url=outer.base_url,
            inner=True,
            claims=outer.claims,
        )
        segs = [s.lower() for s in path.split("/") if s]
        mailbox = segs[1] if len(segs) > 1 and segs[0] == "users" else None
        if mailbox and emu.batch_mailbox_limit is not None:
            per_mailbox[mailbox] = per_mailbox.get(mailbox, 0) + 1
            if per_mailbox[mailbox] > emu.batch_mailbox_limit:
                emu.fail_next(
                    1,
                    429,
                    path=None,
                    code="ApplicationThrottled",
                    message="Application is over its MailboxConcurrency limit.",
                    scope="inner",
                    retry_after=1,
                )
        resp = await emu.graph(inner)
        statuses[rid.lower()] = resp.status
        out_headers = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() not in ("request-id", "client-request-id")
        }
        entry: dict[str, Any] = {"id": rid, "status": resp.status, "headers": out_headers}
        if resp.body is not None:
            entry["headers"]["Content-Type"] = (
                "application/json; odata.metadata=minimal; odata.streaming=true; "
                "IEEE754Compatible=false; charset=utf-8"
            )
            entry["body"] = resp.body
        responses[rid] = entry
    ordered = [responses[str(r["id"])] for r in requests]
    return GraphResponse(200, {"responses": ordered})
