"""Per-mailbox politeness: never more than 4 syncs (so 4 requests) to one Microsoft mailbox at
once — within a process and, on PostgreSQL, across processes (advisory-lock slots)."""

from __future__ import annotations

import threading

import pytest
from core_service import wait_until

from calbridge.service.jobs import MailboxGate
from calbridge.store.db import Store, open_store


def test_a_fifth_sync_of_one_mailbox_waits_for_a_free_slot(store: Store) -> None:
    gate = MailboxGate()
    release = threading.Event()
    inside: list[int] = []
    outcomes: list[bool] = []
    lock = threading.Lock()

    def sync(n: int, mailbox: str) -> None:
        with gate.hold(store, mailbox, timeout=60) as held:
            with lock:
                outcomes.append(held)
                inside.append(n)
            release.wait(60)

    threads = [threading.Thread(target=sync, args=(n, "Rooms@Venue.example")) for n in range(6)]
    threads.append(threading.Thread(target=sync, args=(6, "other@venue.example")))
    for thread in threads:
        thread.start()
    wait_until(lambda: len(inside) == 5, 30, "4 syncs of the mailbox and 1 of another")
    with lock:
        assert 6 in inside and len(inside) == 5  # 4 of the busy mailbox, 1 of the other
    release.set()
    for thread in threads:
        thread.join(60)
    assert len(inside) == 7 and all(outcomes)


@pytest.mark.postgres
def test_slots_are_shared_by_separate_gates_on_postgresql(postgres_url: str) -> None:
    """Two gates stand for two worker processes: on PostgreSQL they share the 4 slots."""
    store = open_store(postgres_url)
    try:
        _shared_slots(store)
    finally:
        store.dispose()


def _shared_slots(store: Store) -> None:
    first, second = MailboxGate(), MailboxGate()
    release = threading.Event()
    held_by_first: list[bool] = []

    def hold_in_first() -> None:
        with first.hold(store, "rooms@venue.example", timeout=30) as held:
            held_by_first.append(held)
            release.wait(60)

    threads = [threading.Thread(target=hold_in_first) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(held_by_first) == 4, 30, "the first worker to hold 4 slots")
    with second.hold(store, "rooms@venue.example", timeout=0.5) as held:
        assert held is False  # the fifth, from another process, does not get in
    release.set()
    for thread in threads:
        thread.join(60)
    with second.hold(store, "rooms@venue.example", timeout=5) as held:
        assert held is True
