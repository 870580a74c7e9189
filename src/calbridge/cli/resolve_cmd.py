"""``calbridge resolve``: who would be the client of an event booked by this address, and why."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import suppress
from itertools import islice
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from calbridge.cli.common import Rows, line, print_json, print_jsonl, say, session, styled
from calbridge.domain.assignment import Assignment, AssignmentSettings, assign
from calbridge.domain.email import normalize_email
from calbridge.errors import BadEmail, CalbridgeError
from calbridge.store.lookup import PREFETCH_CHUNK, StoreLookup, load_assignment_settings


def assignment_json(a: Assignment) -> dict[str, Any]:
    return {
        "email": a.email,
        "client": {"id": a.client.id, "name": a.client.name, "kind": a.client.kind},
        "client_contact": None
        if a.client_contact is None
        else {"id": a.client_contact.id, "name": a.client_contact.name},
        "booked_by": {"id": a.booked_by.id, "name": a.booked_by.name},
        "event_manager": {"id": a.event_manager.id, "name": a.event_manager.name},
        "ambiguous": a.ambiguous,
        "trace": [step.as_dict() for step in a.trace],
        "reasons": {"booked_by": a.booked_by_reason, "event_manager": a.event_manager_reason},
    }


def explain(a: Assignment) -> None:
    say((a.email, "bold"), ("  (ambiguous)", "yellow") if a.ambiguous else "")
    for step in a.trace:
        say("  ", (f"step {step.step}", "cyan"), " ", step.rule)
        say("         → ", step.outcome)
    rows = Rows(fields=True)
    client = line(a.client.name, (f" ({a.client.kind} {a.client.id})", "dim"))
    contact = (
        line(a.client_contact.name, (f" ({a.client_contact.id})", "dim"))
        if a.client_contact
        else None
    )
    rows.add("Event Client", client)
    rows.add("Event Client Contact", contact)
    rows.add("Booked By", line(a.booked_by.name, (f" — {a.booked_by_reason}", "dim")))
    rows.add("Event Manager", line(a.event_manager.name, (f" — {a.event_manager_reason}", "dim")))
    rows.print()


def resolve(
    email: Annotated[str | None, typer.Argument(help="The booker's email address")] = None,
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help="Resolve one address per line of this file ('-' = stdin)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (JSON Lines with --batch)")] = False,
) -> None:
    """Apply the client/user assignment rules (docs/assignment.md) to an address, explaining
    each step."""
    if (email is None) == (batch is None):
        import click  # only for this usage error: a resolve never needs it otherwise

        raise click.UsageError("give exactly one of EMAIL or --batch FILE")
    with session() as s:
        settings = load_assignment_settings(s)
        lookup = StoreLookup(s)
        if email is not None:
            result = assign(normalize_email(email), lookup, settings)
            print_json(assignment_json(result)) if as_json else explain(result)
            return
        assert batch is not None
        _batch(batch, lookup, settings, as_json)


MAX_LINE = 4096  # bytes of one --batch line that are read; an address is at most 254 characters
ECHO = 120  # characters of a malformed line echoed back


def _lines(stream: IO[bytes]) -> Iterator[tuple[str, int]]:
    """Each line decoded (at most MAX_LINE bytes of it are kept) with its full length in bytes:
    a 50 MB line is skipped through, not held in memory or echoed back."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        kept, length = line, len(line)
        while not line.endswith(b"\n") and length > MAX_LINE:
            line = stream.readline(1 << 20)
            if not line:
                break
            length += len(line)
        newline = 1 if line.endswith(b"\n") else 0
        yield kept[:MAX_LINE].decode("utf-8", errors="replace"), length - newline


def _prefetched(lines: Iterator[tuple[str, int]], lookup: StoreLookup) -> Iterator[tuple[str, int]]:
    """The lines unchanged, read ``PREFETCH_CHUNK`` at a time so that each chunk's addresses
    are looked up together (:meth:`StoreLookup.prefetch`) before they are resolved one by one."""
    while chunk := list(islice(lines, PREFETCH_CHUNK)):
        addresses = []
        for raw, length in chunk:
            if raw.strip() and length <= MAX_LINE:
                with suppress(BadEmail):  # reported in its turn, with the reason
                    addresses.append(normalize_email(raw))
        lookup.prefetch(addresses)
        yield from chunk


def echo(text: str, length: int) -> str:
    """What of a malformed line is shown back: at most ECHO characters, marked when cut."""
    if len(text) <= ECHO and length <= MAX_LINE:
        return text
    return f"{text[:ECHO]}… ({length:,} bytes)"


def _batch(path: Path, lookup: StoreLookup, settings: AssignmentSettings, as_json: bool) -> None:
    """One output per non-blank input line, in order; a bad line yields an error object.

    Lines are decoded one by one so that a line that is not UTF-8 is reported like any other
    malformed address instead of stopping the batch.
    """
    try:
        stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    except OSError as exc:
        raise CalbridgeError(f"cannot read the --batch file {path}: {exc.strerror}") from exc
    failures = 0
    table = None if as_json else Rows("email", "client", "contact", "booked by", "manager", "!")
    with stream:
        lines = _lines(stream)
        # Typed at a terminal, each address is answered as it is entered; otherwise (a file, a
        # pipe) addresses are read and looked up a chunk at a time.
        for raw, length in lines if stream.isatty() else _prefetched(lines, lookup):
            if not raw.strip():
                continue
            try:
                if length > MAX_LINE:
                    raise BadEmail(
                        f"the line is {length:,} bytes long; an address has at most 254 characters"
                    )
                if "\ufffd" in raw:
                    raise BadEmail("the line is not UTF-8 text")
                a = assign(normalize_email(raw), lookup, settings)
            except BadEmail as exc:
                failures += 1
                shown = echo(raw.strip(), length)
                if as_json:
                    print_jsonl({"email": shown, "error": str(exc)})
                elif table is not None:
                    table.add(shown, styled(exc, "red"), "", "", "", "")
                continue
            if as_json:
                print_jsonl(assignment_json(a))
            elif table is not None:
                table.add(
                    a.email,
                    a.client.name,
                    a.client_contact.name if a.client_contact else None,
                    a.booked_by.name,
                    a.event_manager.name,
                    "ambiguous" if a.ambiguous else "",
                )
    if table is not None:
        table.print()
    if failures:
        raise typer.Exit(3)
