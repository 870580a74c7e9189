"""A first pull's listing read by a child process: the second core parses while this one loads.

A ``calbridge sync`` process is held to one core by the interpreter lock. On a calendar's first
pull (or a full resync) it has two kinds of CPU work that do not depend on each other: loading
the engine (SQLAlchemy, the ORM models: about half a second) and reading the calendar (parsing
the server's XML and every iCalendar object: about 0.13 ms per event). On one core they take
turns. :func:`pages_from_child` forks the process before either starts — when it has no other
thread, so the child inherits no lock another thread holds — and the child makes the
calendar's provider (opening its secret, importing the HTTP client) and runs its listing: the
same requests, retries, parsing and error messages as in this process. It sends each page,
parsed, down a pipe (pickled: about a tenth of the parsing's cost to read back), and the
provider's request count at the end. The parent loads the engine meanwhile and applies the
pages as they come; it makes a provider of its own only if it needs one (to push). The child
widens the pipe to a megabyte (Linux's default is 64 KB, less than one page), so it reads the
calendar ahead of a parent still loading instead of waiting for it to read.

What crosses the pipe is ``("started",)`` — or ``("refused", text)`` when the provider could not
be made, and the caller then syncs the calendar itself as if it had not forked
(:meth:`ChildPages.started`) — then ``("page", ChangePage)`` for each page, then
``("done", requests)`` or ``("raised", exception, requests)``: the listing's own exception
(:class:`TokenExpired`, a :class:`ProviderError` naming the server's answer) is raised in the
parent as it would have been here; one that cannot be pickled becomes a :class:`ProviderError`
with its text. A child that ends without saying either (killed, out of memory) is a
:class:`ProviderError`; the pages it sent are applied and the token, which comes with the last
page only, is not stored, so the next sync lists again. A parent that stops early (the engine
dropped the listing, the sync failed) ends the child (SIGKILL) and reaps it; so does
:meth:`ChildPages.interrupt`, which :class:`~calbridge.sync.readahead.ReadAhead` calls when it
is closed while its thread waits on the pipe.

Only on Linux (``fork`` without ``exec`` is the platform's usual practice there; macOS system
libraries do not promise it) and only for a process with one thread: otherwise, and when the
fork itself fails, None — the caller reads in a thread as before. The caller also forks only
while it holds no open database connection (``calbridge sync`` does it for the calendars it
reaches before the engine is loaded: SQLite must not see a connection used across a fork).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from calbridge.domain.remote import ChangePage
from calbridge.errors import ProviderError

log = logging.getLogger(__name__)

#: the pipe's buffer on both ends: a page of 200 parsed events pickles to about 90 KB
_BUFFER = 1 << 16
_PIPE = 1 << 20


#: What the child starts with: the listing's pages and how many requests it has made so far.
Listing = tuple[Iterable[ChangePage], Callable[[], int]]


def pages_from_child(
    start: Callable[[], Listing],
    add_requests: Callable[[int], None],
    label: str,
) -> ChildPages | None:
    """Fork now; the child calls ``start()`` (making its provider) and iterates the pages it
    returns, reading each page's items. The pages, as the parent iterates the result;
    ``add_requests`` gets the child's request count when it ends. An exception from
    ``start()`` is the child's refusal (:meth:`ChildPages.started` is False). None when this
    process cannot fork safely here (see the module doc)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        log.info("reading %s in this process: cannot fork (%s)", label, exc)
        return None
    if pid == 0:  # the child: never returns
        os.close(read_end)
        with contextlib.suppress(OSError):  # room for pages parsed ahead (Linux's default: 64 KB)
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE)
        _serve(start, write_end)
    os.close(write_end)
    log.info("%s: read by child process %d", label, pid)
    return ChildPages(pid, os.fdopen(read_end, "rb", buffering=_BUFFER), add_requests, label)


class ChildPages:
    """The pages a child sends, iterated once (on any thread); :meth:`interrupt` (from any
    thread) ends the child, so a reader blocked on the pipe gets to its end at once;
    :meth:`started` says whether the child could start its listing."""

    def __init__(
        self, pid: int, pipe: BinaryIO, add_requests: Callable[[int], None], label: str
    ) -> None:
        self._pid, self._pipe, self._add_requests, self._label = pid, pipe, add_requests, label
        self._lock = threading.Lock()
        self._status: int | None = None  # once reaped: its pid may name another process
        self._answered = threading.Event()  # the child's first message was read (or none)
        self._refusal: str | None = None

    def started(self, timeout: float = 60) -> bool:
        """Whether the child started the listing: False when it could not (its provider could
        not be made: the caller then does everything itself) or did not say so in
        ``timeout`` seconds. Waits for the child's first message, read by the iterating
        thread; a child that ended without one counts as started (iterating says how)."""
        if not self._answered.wait(timeout):
            log.info("%s: the child process did not start its listing in time", self._label)
            return False
        return self._refusal is None

    def __iter__(self) -> Iterator[ChangePage]:
        try:
            try:
                first = self._message()
            finally:
                self._answered.set()
            if first[0] == "refused":
                self._refusal = first[1]
                log.info("%s: the child process did not list it: %s", self._label, first[1])
                raise ProviderError(f"{self._label}: the listing did not start: {first[1]}")
            while True:
                message = self._message()
                if message[0] == "page":
                    yield message[1]
                    continue
                self._add_requests(message[-1])
                if message[0] == "raised":
                    raise message[1]
                return
        finally:
            self._pipe.close()
            self.interrupt()

    def _message(self) -> tuple[Any, ...]:
        """The child's next message; its absence is an unexpected end."""
        try:
            message: tuple[Any, ...] = pickle.load(self._pipe)
        except (EOFError, pickle.UnpicklingError):  # none, or one cut short
            raise ProviderError(
                f"{self._label}: the process reading the calendar ended unexpectedly "
                f"({self._ending()}); nothing after its last page was stored, and the "
                "next sync reads the calendar again"
            ) from None
        return message

    def interrupt(self) -> None:
        """End the child if it still runs, and reap it. SIGKILL: it holds nothing to clean
        up (its sockets and pipe close with it) and no handler it inherited can keep it."""
        with self._lock:
            if self._status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
        self._ending()

    def _ending(self) -> str:
        """How the child ended, in words (reaped, waiting for it if need be)."""
        with self._lock:
            if self._status is None:
                try:
                    self._status = os.waitpid(self._pid, 0)[1]
                except ChildProcessError:
                    self._status = -1
        status = self._status
        if status == -1:
            return "its exit status is unknown"
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"


def _serve(start: Callable[[], Listing], fd: int) -> None:
    """The child's whole life: whether it could start, the listing's pages down the pipe,
    then how it ended."""
    code = 0
    try:
        gc.freeze()  # what the parent made: never collected here either
        gc.enable()  # start-up may have paused it (sync/collector.py)
        with os.fdopen(fd, "wb", buffering=_BUFFER) as out:
            try:
                pages, requests = start()
            except Exception as exc:
                pickle.dump(("refused", str(exc) or type(exc).__name__), out)
                return
            pickle.dump(("started",), out)
            out.flush()
            try:
                for page in pages:
                    plain = ChangePage(
                        list(page.items), list(page.deleted), page.token, page.done, page.full
                    )
                    pickle.dump(("page", plain), out, pickle.HIGHEST_PROTOCOL)
                    out.flush()
                ending: tuple[Any, ...] = ("done", requests())
            except Exception as exc:
                ending = ("raised", _picklable(exc), requests())
            pickle.dump(ending, out, pickle.HIGHEST_PROTOCOL)
    except BaseException:  # the parent went away (a broken pipe), or worse: just end
        code = 1
    finally:
        os._exit(code)  # no atexit, no flushing the parent's buffers a second time


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc, pickle.HIGHEST_PROTOCOL))
    except Exception:
        return ProviderError(str(exc) or type(exc).__name__)
    return exc
