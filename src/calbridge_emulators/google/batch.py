"""HTTP batch requests (``POST /batch/calendar/v3``, ``multipart/mixed``).

Emulated documented behaviour ("Sending batch requests" guide):

* each part is ``Content-Type: application/http`` holding one HTTP request (request line,
  headers, body), identified by ``Content-ID``; the answer is ``multipart/mixed`` with one
  ``application/http`` part per call, ``Content-ID: <response-...>`` echoing the request's id;
* each call is executed independently with its own status - one failing call (e.g. a 409)
  leaves the others intact;
* at most 50 calls per batch for Calendar; more is a 400 for the whole batch;
* a part without its own ``Authorization`` header uses the outer request's.

``googleapiclient`` computes the batch URI from the discovery document (``rootUrl`` +
``batchPath``), ignoring ``client_options.api_endpoint`` - see ``testing.py`` for the ways to
point it at the emulator.
"""

from __future__ import annotations

import json
import secrets
from email.message import Message
from urllib.parse import parse_qs, urlsplit

from .api import ApiRequest, ApiResponse
from .errors import HTTP_REASONS

MAX_CALLS = 50


class BatchFormatError(ValueError):
    pass


def _split_head(blob: bytes) -> tuple[bytes, bytes]:
    """Split headers from body at the first blank line (CRLF or bare LF line endings)."""
    found = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := blob.find(sep)) >= 0]
    if not found:
        return blob, b""
    idx, size = min(found)
    return blob[:idx], blob[idx + size :]


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            out[key.strip().lower()] = value.strip()
    return out


def parse_batch(content_type: str, body: bytes) -> list[tuple[str | None, ApiRequest]]:
    """Split a multipart/mixed batch body into ``(content_id, request)`` pairs."""
    msg = Message()
    msg["Content-Type"] = content_type
    boundary = msg.get_boundary()
    if msg.get_content_type() != "multipart/mixed" or not boundary:
        raise BatchFormatError("Batch requests must be multipart/mixed with a boundary.")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    calls: list[tuple[str | None, ApiRequest]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        part_head, payload = _split_head(chunk)
        part_headers = _headers(part_head)
        request_head, request_body = _split_head(payload)
        lines = request_head.decode("utf-8", "replace").splitlines()
        if not lines or len(lines[0].split()) < 2:
            raise BatchFormatError("Invalid HTTP request in batch part.")
        method, target = lines[0].split()[:2]
        url = urlsplit(target)
        headers = _headers("\n".join(lines[1:]).encode())
        calls.append(
            (
                part_headers.get("content-id"),
                ApiRequest(
                    method=method.upper(),
                    raw_path=url.path,
                    query=parse_qs(url.query, keep_blank_values=True),
                    headers=headers,
                    body=request_body,
                    kind="batch_part",
                ),
            )
        )
    return calls


def _response_id(content_id: str | None) -> str | None:
    if content_id is None:
        return None
    inner = (
        content_id[1:-1] if content_id.startswith("<") and content_id.endswith(">") else content_id
    )
    return f"<response-{inner}>"


def format_batch(parts: list[tuple[str | None, ApiResponse]]) -> tuple[bytes, str]:
    """Serialize per-call responses; returns ``(body, content_type)``."""
    boundary = "batch_" + secrets.token_hex(12)
    out: list[bytes] = []
    for content_id, resp in parts:
        head = ["Content-Type: application/http"]
        rid = _response_id(content_id)
        if rid:
            head.append(f"Content-ID: {rid}")
        payload = b"" if resp.body is None else json.dumps(resp.body).encode()
        inner = [f"HTTP/1.1 {resp.status} {HTTP_REASONS.get(resp.status, 'Unknown')}"]
        if resp.body is not None:
            inner.append("Content-Type: application/json; charset=UTF-8")
        inner.extend(f"{k}: {v}" for k, v in resp.headers.items())
        inner.append(f"Content-Length: {len(payload)}")
        out.append(f"--{boundary}\r\n".encode())
        out.append(("\r\n".join(head) + "\r\n\r\n").encode())
        out.append(("\r\n".join(inner) + "\r\n\r\n").encode())
        out.append(payload + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/mixed; boundary={boundary}"
