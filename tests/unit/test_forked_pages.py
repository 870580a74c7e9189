"""A listing read by a forked child (``calbridge.sync.forked``): its pages, parsed in the child,
reach the parent in order with the request count; the listing's exception is raised in the
parent as it was raised in the child; a child that dies, or is interrupted, ends the pages with
a clear error and is reaped. Forking needs a process with one thread, so each case runs in a
fresh interpreter; in this one (pytest and its helpers may run threads) nothing forks."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from calbridge.domain.remote import ChangePage
from calbridge.errors import ProviderError
from calbridge.sync.forked import ChildPages, pages_from_child
from calbridge.sync.readahead import ReadAhead

SETUP = """
import json, os, signal, threading, time
from calbridge.domain.remote import ChangePage, DeferredPage, RemoteRejection
from calbridge.errors import ProviderError, TokenExpired
from calbridge.sync.forked import pages_from_child

PARENT = os.getpid()
added = []

def rejection(name):  # an item that says which process made it
    return RemoteRejection(name, None, f"made by {'parent' if os.getpid() == PARENT else 'child'}")

def child(listing, requests):  # what the child starts: the pages and their request count
    return lambda: (listing(), lambda: requests)

def read(pages):
    out = []
    try:
        for page in pages:
            out.append([[i.ref_id, i.reason] for i in page.items] + [page.deleted, page.token])
    except Exception as exc:
        out.append([type(exc).__name__, str(exc)])
    return out
"""


def run_case(body: str) -> Any:
    """Run SETUP + ``body`` in a fresh interpreter; what it printed, as JSON."""
    script = SETUP + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pages_are_read_in_the_child_and_reach_the_parent_in_order_with_the_request_count() -> None:
    got = run_case("""
        def listing():
            yield ChangePage([rejection("a")], ["gone"])
            # a page read when its items are asked for: the child asks, so the child reads
            yield DeferredPage(lambda: ([rejection("b")], ["also-gone"]), [], "tok-1", done=True)

        pages = pages_from_child(child(listing, 7), added.append, "calendar 'x'")
        print(json.dumps({"pages": read(pages), "added": added}))
    """)
    assert got["pages"] == [
        [["a", "made by child"], ["gone"], None],
        [["b", "made by child"], ["also-gone"], "tok-1"],
    ]
    assert got["added"] == [7]


def test_the_listings_exception_is_raised_in_the_parent_after_the_pages_before_it() -> None:
    got = run_case("""
        def expired():
            yield ChangePage([rejection("a")])
            raise TokenExpired("calendar 'x': the server no longer knows our sync token")

        class Odd(Exception):  # defined here: the parent cannot unpickle what it cannot find
            def __reduce__(self):
                raise TypeError("not picklable")

        def odd():
            raise Odd("the server said something strange")
            yield

        first = read(pages_from_child(child(expired, 2), added.append, "calendar 'x'"))
        second = read(pages_from_child(child(odd, 3), added.append, "calendar 'x'"))
        print(json.dumps({"first": first, "second": second, "added": added}))
    """)
    assert got["first"] == [
        [["a", "made by child"], [], None],
        ["TokenExpired", "calendar 'x': the server no longer knows our sync token"],
    ]
    assert got["second"] == [["ProviderError", "the server said something strange"]]
    assert got["added"] == [2, 3]


def test_a_child_that_cannot_start_says_so_and_the_parent_knows_before_any_page() -> None:
    """The child makes the provider (opens the secret): when it cannot, ``started()`` is False
    — the caller then syncs the calendar itself — and the pages end with the reason, never as
    an empty listing (which a first pull would take for an empty calendar)."""
    got = run_case("""
        from calbridge.sync.readahead import ReadAhead

        def refuses():
            raise ProviderError("calendar 'x': the stored secret cannot be decrypted")

        def fine():
            return iter([ChangePage([rejection("a")], [], "tok", done=True)]), lambda: 1

        refused = pages_from_child(refuses, added.append, "calendar 'x'")
        ahead = ReadAhead(refused)  # iterated in a thread, as calbridge sync does
        verdict = refused.started()
        out = read(ahead)
        good = pages_from_child(fine, added.append, "calendar 'y'")
        ahead = ReadAhead(good)
        print(json.dumps({"started": [verdict, good.started()], "refused": out,
                          "good": read(ahead), "added": added}))
    """)
    assert got["started"] == [False, True]
    assert got["refused"] == [
        [
            "ProviderError",
            "calendar 'x': the listing did not start: "
            "calendar 'x': the stored secret cannot be decrypted",
        ]
    ]
    assert got["good"] == [[["a", "made by child"], [], "tok"]]
    assert got["added"] == [1]


def test_a_child_that_dies_ends_the_pages_with_an_error_saying_so_and_is_reaped() -> None:
    got = run_case("""
        def dies():
            yield ChangePage([rejection("a")])
            os.kill(os.getpid(), signal.SIGKILL)
            yield ChangePage([rejection("never")])

        pages = pages_from_child(child(dies, 1), added.append, "calendar 'x'")
        out = read(pages)
        try:
            os.waitpid(-1, os.WNOHANG)
            children = "left"
        except ChildProcessError:
            children = "none"
        print(json.dumps({"pages": out, "added": added, "children": children}))
    """)
    assert got["pages"][0] == [["a", "made by child"], [], None]
    kind, message = got["pages"][1]
    assert kind == "ProviderError"
    assert "calendar 'x': the process reading the calendar ended unexpectedly" in message
    assert "killed by signal 9" in message and "the next sync reads the calendar again" in message
    assert got["added"] == [] and got["children"] == "none"


def test_interrupting_ends_a_child_that_is_still_working_and_its_reader_at_once() -> None:
    """A reader waiting on a child whose server is slow (here: an hour) is released when the
    listing is dropped: the child is ended and reaped (a hang would fail the run's timeout)."""
    got = run_case("""
        def slow():
            yield ChangePage([rejection("a")])
            time.sleep(3600)
            yield ChangePage([rejection("never")])

        pages = pages_from_child(child(slow, 1), added.append, "calendar 'x'")
        it = iter(pages)
        first = next(it)
        threading.Timer(0.2, pages.interrupt).start()  # while the reader waits for more
        try:
            outcome = ["page", next(it).items[0].ref_id]
        except ProviderError as exc:
            outcome = ["ProviderError", str(exc)]
        try:
            os.waitpid(-1, os.WNOHANG)
            children = "left"
        except ChildProcessError:
            children = "none"
        print(json.dumps({"first": first.items[0].ref_id, "then": outcome, "children": children}))
    """)
    assert got["first"] == "a" and got["children"] == "none"
    assert got["then"][0] == "ProviderError" and "killed by signal 9" in got["then"][1]


def test_a_process_running_another_thread_does_not_fork() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert pages_from_child(lambda: (iter([ChangePage()]), lambda: 0), print, "x") is None
    finally:
        stop.set()
        other.join()


def test_closing_a_read_ahead_interrupts_a_source_that_can_be_interrupted() -> None:
    """:class:`ReadAhead` tells such a source (a child's pages) to stop before it waits for its
    thread: the thread is blocked inside the source, and only the source can release it."""
    release = threading.Event()
    calls: list[str] = []

    class Blocking:
        def __iter__(self) -> Any:
            yield ChangePage()
            release.wait(60)
            calls.append("released")

        def interrupt(self) -> None:
            calls.append("interrupt")
            release.set()

    pages = ReadAhead(Blocking())
    assert pages.peek() is not None
    pages.close()
    assert calls == ["interrupt", "released"]


def test_a_message_cut_short_is_an_unexpected_end() -> None:
    """A child that dies while writing leaves half a message on the pipe: the same clear error
    as one that sent nothing more, with how the child ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    read_end, write_end = os.pipe()
    os.write(write_end, pickle.dumps(("started",)) + pickle.dumps(("page", ChangePage()))[:-5])
    os.close(write_end)
    pages = ChildPages(child.pid, os.fdopen(read_end, "rb"), print, "calendar 'x'")
    with pytest.raises(ProviderError, match=r"ended unexpectedly \(exit status 0\)"):
        list(pages)


def test_the_child_parses_ahead_of_a_parent_that_is_not_reading_yet(tmp_path: Any) -> None:
    """The pipe holds about a megabyte of pages (Linux's default is 64 KB): the child goes on
    reading the calendar while the parent is still loading the engine, here about 600 KB of
    pages that nobody reads until the child has made them all."""
    marker = tmp_path / "listed"
    got = run_case(f"""
        def listing():
            for n in range(6):  # about 100 KB each, pickled
                yield ChangePage([rejection(f"{{n}}-{{i}}" + "x" * 400) for i in range(200)], [])
            open({str(marker)!r}, "w").close()  # the last page is in the pipe
            yield ChangePage([], [], "tok-1", done=True)

        pages = pages_from_child(child(listing, 1), added.append, "calendar 'x'")
        deadline = time.monotonic() + 20
        while not os.path.exists({str(marker)!r}) and time.monotonic() < deadline:
            time.sleep(0.02)
        ahead = os.path.exists({str(marker)!r})
        print(json.dumps({{"ahead": ahead, "pages": len(read(pages)), "added": added}}))
    """)
    assert got == {"ahead": True, "pages": 7, "added": [1]}
