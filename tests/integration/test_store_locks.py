"""Named locks across processes (store.locks): the wait for one is bounded when asked."""

from __future__ import annotations

import threading

import pytest

from mailintake.errors import TransientError
from mailintake.store.repo import Store

pytestmark = pytest.mark.both_databases


def test_a_bounded_wait_gives_up_while_another_holds_the_lock(store: Store, second: Store) -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with store.exclusive("token:claims"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(TransientError) as busy, second.exclusive("token:claims", wait=0.5):
            pass
        assert "another process has held this lock for over" in str(busy.value)
        with second.exclusive("token:other", wait=0.5):  # other names are free
            pass
    finally:
        release.set()
        thread.join(30)
    with second.exclusive("token:claims", wait=5):  # free again once released
        pass
