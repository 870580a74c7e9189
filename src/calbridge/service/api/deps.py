"""What every API route shares: the caller (Bearer token), write permission, the store and
the job queue.

Every route under ``/api`` depends on :func:`caller`: no token, or one that is unknown or
revoked, is a 401 problem with ``WWW-Authenticate: Bearer``. Routes that write depend on
:func:`writer` too: a read-only token gets a 403 problem. The token's name is the ``actor``
recorded in the history of what it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from calbridge.errors import CalbridgeError
from calbridge.service.problems import ApiProblem
from calbridge.service.tokens import TokenInfo, authenticate
from calbridge.store.db import Store

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API token",
    description="`calbridge tokens create NAME [--read-only]`",
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="calbridge"'}


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@contextmanager
def transaction(request: Request) -> Iterator[Session]:
    """One transaction on the app's store; commits when the block ends without an error."""
    with store_of(request).session() as session:
        yield session


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> TokenInfo:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem(
            401,
            "unauthorized",
            "this API needs a token: send `Authorization: Bearer <token>` "
            "(create one with `calbridge tokens create NAME`)",
            headers=_CHALLENGE,
        )
    with transaction(request) as session:
        info = authenticate(session, credentials.credentials)
    if info is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "the API token is unknown or was revoked; create a new one with "
            "`calbridge tokens create NAME`",
            headers=_CHALLENGE,
        )
    request.state.actor = info.name
    return info


def writer(info: Annotated[TokenInfo, Depends(caller)]) -> TokenInfo:
    if info.read_only:
        raise ApiProblem(
            403,
            "read-only-token",
            f"API token '{info.name}' is read-only and cannot change anything; use a token "
            "created without --read-only",
        )
    return info


Caller = Annotated[TokenInfo, Depends(caller)]
Writer = Annotated[TokenInfo, Depends(writer)]


def push_booking(request: Request, event_id: int) -> None:
    """After a committed booking write: have the calendars follow within seconds. The write
    stands even when the queue refuses (the next poll pushes it), so this only logs."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        return
    try:
        jobs.push_booking(event_id)
    except CalbridgeError as exc:
        log.warning("booking %s: push not enqueued: %s", event_id, exc)
