"""A Microsoft 365 / Exchange Online calendar through Microsoft Graph (app-only), behind the
:class:`BatchingProvider` protocol of ``domain/remote.py``.

Pull: ``calendarView/delta`` over the sync window, one :class:`ChangePage` per Graph page
(``Prefer: odata.maxpagesize``), following ``@odata.nextLink``; the ``@odata.deltaLink`` of the
last page is the token, stamped with the window it was opened over (``providers.window_token``).
A delta link Graph no longer knows (410 ``SyncStateNotFound``), or one whose window the engine's has
moved past, raises :class:`TokenExpired` and the engine resyncs in full. Graph reports
``@removed`` both for an event that was deleted and for one that was *moved out of the window*;
the ids are looked up (in ``$batch`` reads) so that only a real deletion cancels a booking and a
moved event is returned with its new dates.

Push: creates carry a ``transactionId`` derived from the booking's key (a retried POST returns
the event made the first time); updates are PATCH with ``If-Match`` (412 -> :class:`Conflict`,
the engine re-reads and merges); deletes carry ``If-Match`` and a 404 means "already gone".
:meth:`GraphProvider.write_many` sends up to 20 writes in one JSON ``$batch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from calbridge.domain.remote import (
    ChangePage,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
    WriteOp,
    WriteResult,
    Written,
)
from calbridge.errors import CalbridgeError, ConfigError, Conflict, ProviderError, TokenExpired
from calbridge.providers.graph.auth import (
    SHARED_TOKENS,
    AppCredentials,
    TokenSources,
    relink_command,
)
from calbridge.providers.graph.http import GRAPH_API, MAX_BATCH, GraphSession, InnerResponse
from calbridge.providers.graph.mapping import (
    KEY_PROPERTY,
    create_body,
    item_of,
    write_body,
    written_uid,
)
from calbridge.providers.retry import RetryPolicy
from calbridge.providers.window_token import DeltaToken

READ_PREFER = 'outlook.timezone="UTC", outlook.body-content-type="text", IdType="ImmutableId"'
EXPAND_KEY = f"singleValueExtendedProperties($filter=id eq '{KEY_PROPERTY}')"
ADOPT_SLACK = timedelta(seconds=5)


class GraphProvider:
    """One calendar of one mailbox (its default calendar unless ``calendar_id`` is given)."""

    kind = "Microsoft 365"
    max_batch = MAX_BATCH

    def __init__(
        self,
        mailbox: str,
        creds: AppCredentials,
        *,
        name: str = "",
        calendar_id: str | None = None,
        api_base: str = GRAPH_API,
        retry: RetryPolicy | None = None,
        page_size: int = 250,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
        tokens: TokenSources = SHARED_TOKENS,
        adding: bool = False,
        msal_state: Any = None,
        on_msal_state: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``msal_state``: what ``on_msal_state`` received in an earlier run (MSAL's token and
        discovery caches); ``on_msal_state`` is called at :meth:`close` when that state changed,
        to keep it (sealed) for the next process."""
        self.mailbox = mailbox
        self.calendar_id = calendar_id
        self.resolved_calendar_id: str | None = None  # the calendar's id, once check() read it
        self.name = name or mailbox
        self.page_size = max(1, min(page_size, 1000))
        self.label = f"calendar '{self.name}' (Microsoft 365)"
        self.http = GraphSession(
            creds,
            tokens,
            label=self.label,
            mailbox=mailbox,
            relink=relink_command(self.name, mailbox, creds, adding=adding),
            api_base=api_base,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )
        self.http.tokens.seed(msal_state)
        self._msal_saved = self.http.tokens.export_state()
        self._on_msal_state = on_msal_state
        self.user_path = f"/users/{quote(mailbox, safe='@')}"
        calendar = f"calendars/{quote(calendar_id, safe='=')}" if calendar_id else "calendar"
        self.base = f"{self.user_path}/{calendar}"

    @property
    def requests(self) -> int:
        """HTTP requests made so far: Graph calls, ``$batch`` requests and token requests."""
        return self.http.counter.count

    @requests.setter
    def requests(self, value: int) -> None:
        self.http.counter.count = value

    def close(self) -> None:
        self.http.close()
        if self._on_msal_state is not None:
            state = self.http.tokens.export_state()
            if state != self._msal_saved:
                self._on_msal_state(state)
                self._msal_saved = state

    def _event_path(self, event_id: str) -> str:
        return f"{self.base}/events/{quote(event_id, safe='=')}"

    # ------------------------------------------------------------ check

    def check(self) -> None:
        """Sign in, then read the calendar: errors say which of the three is wrong."""
        response = self.http.send(
            "GET", f"{self.base}?$select=id,name,canEdit", headers={"Prefer": READ_PREFER}
        )
        if response.status_code == 200:
            found = response.json().get("id")
            self.resolved_calendar_id = str(found) if found else None
            return
        if (
            response.status_code == 404
            and _code(response) != "ErrorInvalidUser"
            and self.calendar_id
        ):
            raise ConfigError(
                f"{self.label}: mailbox '{self.mailbox}' has no calendar with id "
                f"'{self.calendar_id}'. {self._calendars_hint()}"
            )
        self.http.fail(response, f"reading the calendar of '{self.mailbox}'")

    def _calendars_hint(self) -> str:
        response = self.http.send("GET", f"{self.user_path}/calendars?$select=id,name&$top=50")
        if response.status_code != 200:
            return "Omit --calendar-id to use the mailbox's default calendar."
        found = [
            f"'{c.get('name')}' (--calendar-id {c.get('id')})" for c in _json(response)["value"]
        ]
        return (
            "Its calendars: " + "; ".join(found) + ". Omit --calendar-id for the default calendar."
        )

    # ------------------------------------------------------------ pull

    def list_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        full = token is None
        if token is None:
            opened, url = window, self._first_delta(window)
        else:
            opened, url = self._resume(token, window)
        while True:
            headers = {"Prefer": f"{READ_PREFER}, odata.maxpagesize={self.page_size}"}
            response = self.http.send("GET", url, headers=headers)
            if response.status_code == 404 and _code(response) == "ErrorItemNotFound":
                raise ConfigError(
                    f"{self.label}: the calendar no longer exists in mailbox '{self.mailbox}'; "
                    f"point it at another one (`calbridge calendars update {self.name} "
                    "--calendar-id ID`) or remove it (`calbridge calendars remove "
                    f"{self.name}`)"
                )
            if response.status_code != 200:
                self.http.fail(response, "listing changes", delta=True)
            data = response.json()
            page = ChangePage(full=full)
            for raw in data.get("value") or []:
                if "@removed" in raw:
                    page.deleted.append(str(raw.get("id")))
                else:
                    page.items.append(item_of(raw))
            if page.deleted and not full:
                moved, page.deleted = self._still_there(page.deleted)
                page.items.extend(moved)
            next_link, delta_link = data.get("@odata.nextLink"), data.get("@odata.deltaLink")
            if next_link is None and delta_link is None:
                raise ProviderError(f"{self.label}: Graph ended a delta page without a link")
            page.done = next_link is None
            page.token = str(DeltaToken(opened, str(delta_link))) if page.done else None
            yield page
            if page.done:
                return
            url = str(next_link)

    def _first_delta(self, window: Window) -> str:
        query = urlencode(
            {"startDateTime": _iso(window.start), "endDateTime": _iso(window.end)}, safe=":"
        )
        return f"{self.base}/calendarView/delta?{query}"

    def _resume(self, token: str, window: Window) -> tuple[Window, str]:
        """The window and delta link of a stored token, unless the link cannot serve
        ``window`` (see ``providers.window_token``) or belongs to another calendar or server."""
        stored = DeltaToken.parse(token)
        if stored is None:
            raise TokenExpired(f"{self.label}: the stored delta link records no window")
        if not stored.serves(window):
            raise TokenExpired(
                f"{self.label}: the sync window moved past the delta link's "
                f"({stored.window.start:%Y-%m-%d} to {stored.window.end:%Y-%m-%d})"
            )
        link = stored.link
        if not link.startswith(self.http.api_base) or "/calendarView/delta" not in link:
            raise TokenExpired(f"{self.label}: the stored delta link is not for this calendar")
        return stored.window, link

    def _still_there(self, ids: list[str]) -> tuple[list[RemoteItem | RemoteRejection], list[str]]:
        """Split ``@removed`` ids into events that still exist (moved out of the window) and
        events that are gone."""
        found: list[RemoteItem | RemoteRejection] = []
        gone: list[str] = []
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start : start + MAX_BATCH]
            requests = [
                {
                    "id": str(n),
                    "method": "GET",
                    "url": self._event_path(i),
                    "headers": {"Prefer": READ_PREFER},
                }
                for n, i in enumerate(chunk)
            ]
            answers = self.http.batch(requests)
            for n, event_id in enumerate(chunk):
                answer = answers[str(n)]
                if answer.status == 200:
                    found.append(item_of(answer.body))
                elif answer.status == 404:
                    gone.append(event_id)
                else:
                    raise self.http.inner_error(answer, "checking a removed event")
        return found, gone

    def get(self, ref_id: str, window: Window) -> RemoteItem | RemoteRejection | None:
        response = self.http.send(
            "GET",
            f"{self._event_path(ref_id)}?$expand={EXPAND_KEY}",
            headers={"Prefer": READ_PREFER},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self.http.fail(response, "reading an event")
        return item_of(response.json())

    # ------------------------------------------------------------ push

    def create(self, event: RemoteEvent) -> Written:
        started = datetime.now(UTC)
        response = self.http.send(
            "POST", f"{self.base}/events", json=create_body(event), headers={"Prefer": READ_PREFER}
        )
        if response.status_code not in (200, 201):
            self.http.fail(response, f"creating '{event.fields.name[:60]}'")
        return _written(response.json(), started)

    def update(self, ref: RemoteRef, event: RemoteEvent) -> Written:
        response = self.http.send(
            "PATCH",
            self._event_path(ref.id),
            json=write_body(event, self._attendees(ref, event)),
            headers=_if_match(ref, READ_PREFER),
        )
        if response.status_code == 404:
            raise Conflict(f"{self.label}: '{event.fields.name[:60]}' was deleted on the calendar")
        if response.status_code != 200:
            self.http.fail(response, f"updating '{event.fields.name[:60]}'")
        return _written(response.json(), None)

    def delete(self, ref: RemoteRef, recurrence_id: str | None = None) -> None:
        """Delete an event (or, Graph occurrences being objects, one occurrence by its id)."""
        response = self.http.send("DELETE", self._event_path(ref.id), headers=_if_match(ref))
        if response.status_code not in (200, 202, 204, 404):
            self.http.fail(response, "deleting an event")

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for start in range(0, len(ops), MAX_BATCH):
            results.extend(self._write_batch(ops[start : start + MAX_BATCH]))
        return results

    def _attendees(self, ref: RemoteRef, event: RemoteEvent) -> dict[str, Any] | None:
        """For an update that sends rooms: the event's attendees and locations now (a PATCH
        replaces them whole; the ones we did not put there are kept), else None."""
        if event.rooms is None:
            return None
        response = self.http.send("GET", f"{self._event_path(ref.id)}?$select=attendees,locations")
        if response.status_code == 404:
            return None  # gone: the PATCH says so
        if response.status_code != 200:
            self.http.fail(response, "reading an event's attendees")
        body: dict[str, Any] = response.json()
        return body

    def _write_batch(self, ops: list[WriteOp]) -> list[WriteResult]:
        started = datetime.now(UTC)
        requests = [self._batch_request(str(n), op) for n, op in enumerate(ops)]
        answers = self.http.batch(requests)
        return [self._result(op, answers[str(n)], started) for n, op in enumerate(ops)]

    def _batch_request(self, rid: str, op: WriteOp) -> dict[str, Any]:
        json_headers = {"Content-Type": "application/json"}
        if op.kind == "create":
            assert op.event is not None
            return {
                "id": rid,
                "method": "POST",
                "url": f"{self.base}/events",
                "headers": {**json_headers, "Prefer": READ_PREFER},
                "body": create_body(op.event),
            }
        assert op.ref is not None
        if op.kind == "update":
            assert op.event is not None
            return {
                "id": rid,
                "method": "PATCH",
                "url": self._event_path(op.ref.id),
                "headers": {**json_headers, **_if_match(op.ref, READ_PREFER)},
                "body": write_body(op.event, self._attendees(op.ref, op.event)),
            }
        return {
            "id": rid,
            "method": "DELETE",
            "url": self._event_path(op.ref.id),
            "headers": _if_match(op.ref),
        }

    def _result(self, op: WriteOp, answer: InnerResponse, started: datetime) -> WriteResult:
        verb = {"create": "creating", "update": "updating", "delete": "deleting"}[op.kind]
        what = f"{verb} '{op.event.fields.name[:60]}'" if op.event else f"{verb} an event"
        if op.kind == "delete":
            if answer.status in (200, 202, 204, 404):
                return None
        elif op.kind == "update" and answer.status == 404:
            return Conflict(f"{self.label}: the event was deleted on the calendar")
        elif answer.status in (200, 201):
            return _written(answer.body, started if op.kind == "create" else None)
        error: CalbridgeError = self.http.inner_error(answer, what)
        return error


def _if_match(ref: RemoteRef, prefer: str | None = None) -> dict[str, str]:
    headers = {"If-Match": ref.etag} if ref.etag else {}
    if prefer:
        headers["Prefer"] = prefer
    return headers


def _written(raw: dict[str, Any], created_after: datetime | None) -> Written:
    """The result of a write. A create whose event existed before we sent it (Graph answered
    a repeated ``transactionId`` with the first event) is ``adopted``."""
    ref = RemoteRef(str(raw["id"]), raw.get("@odata.etag"))
    adopted = False
    if created_after is not None and raw.get("createdDateTime"):
        try:
            created = datetime.fromisoformat(str(raw["createdDateTime"])[:26].rstrip("Z"))
        except ValueError:
            created = None
        if created is not None:
            adopted = created.replace(tzinfo=UTC) < created_after - ADOPT_SLACK
    return Written(ref, written_uid(raw), adopted=adopted)


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _code(response: httpx.Response) -> str:
    error = _json(response).get("error")
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def open_graph(
    name: str,
    settings: dict[str, Any],
    secret: dict[str, Any],
    *,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    tokens: TokenSources = SHARED_TOKENS,
    adding: bool = False,
    on_msal_state: Callable[[dict[str, Any]], None] | None = None,
) -> GraphProvider:
    """A provider for a stored calendar: ``settings`` (mailbox, tenant, client_id,
    calendar_id, api_base, login_base, ca_file, and optionally ``retry``: see
    :meth:`RetryPolicy.from_settings`) and the opened ``secret`` (client_secret or
    certificate_pem, and ``msal``: the MSAL state an earlier run kept through
    ``on_msal_state``)."""
    if retry is None:
        retry = RetryPolicy.from_settings(settings.get("retry"))
    creds = AppCredentials(
        tenant=str(settings["tenant"]),
        client_id=str(settings["client_id"]),
        client_secret=secret.get("client_secret") or None,
        certificate_pem=secret.get("certificate_pem") or None,
        login_base=str(settings.get("login_base") or "https://login.microsoftonline.com"),
        ca_file=settings.get("ca_file") or None,
    )
    return GraphProvider(
        str(settings["mailbox"]),
        creds,
        name=name,
        calendar_id=settings.get("calendar_id") or None,
        api_base=str(settings.get("api_base") or GRAPH_API),
        retry=retry,
        transport=transport,
        tokens=tokens,
        adding=adding,
        msal_state=secret.get("msal"),
        on_msal_state=on_msal_state,
    )
