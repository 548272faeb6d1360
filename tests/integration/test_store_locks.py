"""Named locks across processes (store.locks): the wait for one is bounded when asked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailintake.errors import TransientError
from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store.repo import Store

pytestmark = pytest.mark.both_databases


@pytest.fixture
def second(settings: Settings) -> Iterator[Store]:
    """Another process's store: its own engine on the same database, named differently so
    that only the database's lock (not this process's own) stands between the two."""
    url = settings.database_url or ""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        other = f"sqlite:///{path.parent}/./{path.name}"
    else:
        other = f"{url}&application_name=second"
    store = open_store(Settings(home=settings.home, database_url=other))
    yield store
    store.engine.dispose()


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
