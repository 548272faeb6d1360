"""A Graph poll goes on from the folder's deltaLink on the emulator (sources.graph_delta): the
first poll lists the folder and saves the link; a poll with nothing new is one request; a new
message is imported once; what the after-import action or a person changes (read, moved out
and back) is not imported again; a failed message is tried again from the list of failures;
a lost sync state falls back to a listing screened against the store (nothing doubled, and
the status says so); and a pass killed between recording and the checkpoint loses and
doubles nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.poll import Poller
from mailintake.settings import Settings
from mailintake.status import mailbox_status
from mailintake.store import checkpoints, imports
from mailintake.store.repo import Store
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.clock import Clock
from tests.support.graph import configure, raw
from tests.support.launcher import run_on

pytestmark = pytest.mark.both_databases


def mailbox(graph: GraphEmulator, tmp_path: Path, action: str = "keep") -> str:
    address = f"delta-{action}-{tmp_path.name[-8:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    return address


def setup(
    store: Store, idp: IdentityProvider, graph: GraphEmulator, out: Path, address: str, **box: Any
) -> None:
    configure(store, idp, graph.base_url, out, username=address, **box)


def imported(out: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in out.glob("claims/*/*/message.eml"))


def link(store: Store, address: str) -> str | None:
    with store.read() as repo:
        saved = checkpoints.load(repo.conn, "claims", f"{address}/inbox")
    return saved.cursor if saved is not None else None


def requests(graph: GraphEmulator) -> list[str]:
    return [path for path, count in graph.stats["by_path"].items() for _ in range(count)]


def move(graph: GraphEmulator, address: str, message: str, folder: str) -> None:
    """What a person does in Outlook: the message goes to another folder."""
    box = graph.store.mailbox(address)
    assert box is not None
    with graph.store.lock:
        target = box.folder(folder)
        assert target is not None
        box.place(box.messages[message], target)


def test_a_poll_with_nothing_new_is_one_request(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = mailbox(graph, tmp_path)
    messages = [raw(n) for n in range(130)]
    for message in messages:
        graph.deliver(address, message)
    out = tmp_path / "out"
    setup(store, idp, graph, out, address)
    poller = Poller(store, home)

    first = poller.poll("claims")
    assert (first.imported, first.error) == (130, None)
    assert link(store, address) is not None
    assert any(path.endswith("/messages/delta") for path in requests(graph))

    graph.reset_stats()
    quiet = poller.poll("claims")
    assert (quiet.imported, quiet.skipped, quiet.failed, quiet.error) == (0, 0, 0, None)
    assert len(requests(graph)) == 1
    assert requests(graph)[0].startswith("GET ")
    assert requests(graph)[0].endswith("/delta")

    later = raw(500)
    graph.deliver(address, later)
    graph.reset_stats()
    new = poller.poll("claims")
    assert (new.imported, new.skipped, new.error) == (1, 0, None)
    assert sum(p.endswith("/delta") for p in requests(graph)) == 1  # the folder not listed
    assert imported(out) == sorted([*messages, later])
    graph.reset_stats()
    assert poller.poll("claims").imported == 0
    assert len(requests(graph)) == 1


@pytest.mark.parametrize("action", ["mark_read", "move", "delete"])
def test_the_after_import_actions_still_work_and_bring_nothing_back(
    store: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
    action: str,
) -> None:
    address = mailbox(graph, tmp_path, action)
    messages = [raw(n) for n in range(12)]
    for message in messages:
        graph.deliver(address, message)
    extra: dict[str, Any] = {"after_import": action}
    if action == "move":
        graph.add_folder(address, "Processed")
        extra["move_to"] = "Processed"
    out = tmp_path / "out"
    setup(store, idp, graph, out, address, **extra)
    poller = Poller(store, home)
    assert poller.poll("claims").imported == 12
    inbox = graph.messages(address)
    assert all(m["isRead"] for m in inbox) if action == "mark_read" else inbox == []

    graph.reset_stats()
    again = poller.poll("claims")  # the actions changed the folder: nothing new for all that
    assert (again.imported, again.skipped, again.error) == (0, 0, None)
    assert len(requests(graph)) == 1  # a move target is not looked up for nothing either
    later = raw(100)
    graph.deliver(address, later)
    assert poller.poll("claims").imported == 1
    assert imported(out) == sorted([*messages, later])


def test_messages_changed_or_moved_back_are_not_imported_again(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = mailbox(graph, tmp_path)
    ids = [graph.deliver(address, raw(n)) for n in range(5)]
    out = tmp_path / "out"
    setup(store, idp, graph, out, address)
    poller = Poller(store, home)
    assert poller.poll("claims").imported == 5

    box = graph.store.mailbox(address)
    assert box is not None
    with graph.store.lock:
        box.messages[ids[0]].is_read = True
        box.changed(box.messages[ids[0]])  # read in Outlook
    move(graph, address, ids[1], "archive")  # filed away…
    move(graph, address, ids[1], "inbox")  # …and back: new in the inbox for Graph
    move(graph, address, ids[2], "deleteditems")  # gone from the folder: @removed, ignored
    result = poller.poll("claims")
    assert (result.imported, result.skipped, result.error) == (0, 1, None)
    assert imported(out) == sorted(raw(n) for n in range(5))


def test_a_failed_message_is_tried_again_from_the_list_of_failures(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = mailbox(graph, tmp_path)
    ids = [graph.deliver(address, raw(n)) for n in range(4)]
    graph.faults.fail_message(ids[1], "value", 500, "ErrorMimeContentConversionFailed")
    out = tmp_path / "out"
    setup(store, idp, graph, out, address)
    clock = Clock()
    poller = Poller(store, home, clock=clock)
    first = poller.poll("claims")
    assert (first.imported, first.failed) == (3, 1)
    assert link(store, address) is not None  # past the failed one: it is in the list

    clock.advance(seconds=30)
    graph.reset_stats()
    waiting = poller.poll("claims")
    assert (waiting.imported, waiting.failed, waiting.waiting) == (0, 0, 1)
    assert len(requests(graph)) == 1

    clock.advance(days=1)
    graph.reset_stats()
    retried = poller.poll("claims")
    assert (retried.imported, retried.failed, retried.waiting) == (1, 0, 0)
    paths = requests(graph)
    assert sum(p.endswith("/delta") for p in paths) == 1  # never a listing of the folder
    assert not any(p.endswith("/messages") for p in paths)
    assert sum(p.endswith("/$value") for p in paths) == 1
    assert imported(out) == sorted(raw(n) for n in range(4))


@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired"])
def test_a_lost_sync_state_falls_back_to_a_screened_listing_and_says_so(
    store: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
    code: str,
) -> None:
    address = mailbox(graph, tmp_path)
    messages = [raw(n) for n in range(30)]
    for message in messages:
        graph.deliver(address, message)
    out = tmp_path / "out"
    setup(store, idp, graph, out, address, after_import="mark_read")
    poller = Poller(store, home)
    assert poller.poll("claims").imported == 30
    before = link(store, address)

    graph.faults.forget_sync_states(code)
    later = raw(30)
    graph.deliver(address, later)
    result = poller.poll("claims")
    assert (result.imported, result.skipped, result.failed, result.error) == (1, 30, 0, None)
    assert any(code in w and "listed whole" in w for w in result.warnings)
    with store.read() as repo:
        row = next(r for r in mailbox_status(repo) if r["name"] == "claims")
    assert "no longer had the sync state" in row["last_warning"]
    assert link(store, address) not in (None, before)
    assert imported(out) == sorted([*messages, later])

    graph.reset_stats()
    quiet = poller.poll("claims")
    assert (quiet.imported, quiet.warnings, len(requests(graph))) == (0, [], 1)


def test_killed_between_record_and_checkpoint_loses_and_doubles_nothing(
    store: Store,
    settings: Settings,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
) -> None:
    address = mailbox(graph, tmp_path, "mark_read")
    first = [raw(n) for n in range(5)]
    for message in first:
        graph.deliver(address, message)
    out = tmp_path / "out"
    setup(store, idp, graph, out, address, after_import="mark_read")
    assert Poller(store, home).poll("claims").imported == 5
    before = link(store, address)

    later = [raw(n) for n in range(5, 155)]  # two batches
    for message in later:
        graph.deliver(address, message)
    # After the last batch is recorded and marked read, before the deltaLink is saved.
    killed = run_on(
        settings, "-m", "tests.support.crash_poll", "claims", "--kill-at", "ack.after:2"
    )
    assert killed.returncode == -9, killed.stderr
    assert link(store, address) == before
    assert len(imported(out)) == 155

    graph.reset_stats()
    done = run_on(settings, "-m", "tests.support.crash_poll", "claims")
    assert done.returncode == 0, done.stderr
    assert "'imported': 0" in done.stdout
    assert link(store, address) not in (None, before)
    assert imported(out) == sorted([*first, *later])
    assert all(m["isRead"] for m in graph.messages(address))


def test_a_delta_link_is_kept_per_mailbox_and_folder(store: Store, tmp_path: Path) -> None:
    """The store keeps one deltaLink per mailbox and folder (store.checkpoints' ``cursor``),
    replaces it, and forgets it with the mailbox's import records."""
    long = "https://graph.microsoft.com/v1.0/users/a@contoso.com/mailFolders('AAMk')/" + (
        "messages/delta?$deltatoken=" + "x" * 2000
    )
    with store.begin() as repo:
        checkpoints.save(repo.conn, "one", checkpoints.Checkpoint("a@x/inbox", cursor="first"))
        checkpoints.save(repo.conn, "one", checkpoints.Checkpoint("a@x/Invoices", cursor=long))
        checkpoints.save(repo.conn, "two", checkpoints.Checkpoint("a@x/inbox", cursor="other"))
        checkpoints.save(repo.conn, "one", checkpoints.Checkpoint("a@x/inbox", cursor="second"))
    with store.read() as repo:
        assert checkpoints.load(repo.conn, "one", "a@x/inbox") == checkpoints.Checkpoint(
            "a@x/inbox", None, 0, "second"
        )
        found = checkpoints.load(repo.conn, "one", "a@x/Invoices")
        assert found is not None
        assert found.cursor == long
        other = checkpoints.load(repo.conn, "two", "a@x/inbox")
        assert other is not None
        assert other.cursor == "other"
    with store.begin() as repo:
        imports.forget_mailbox(repo.conn, "one")
    with store.read() as repo:
        assert checkpoints.load(repo.conn, "one", "a@x/inbox") is None
        assert checkpoints.load(repo.conn, "two", "a@x/inbox") is not None
