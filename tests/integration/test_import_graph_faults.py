"""mailintake against the Graph emulator's faults (sandbox.graph.faults): after-import actions
confirmed, not assumed; well-known folders resolved; Exchange's refusals diagnosed with the
fix; an incomplete listing noticed and listed again; throttling, 503 and 504 survived."""

from __future__ import annotations

import email.policy
import os
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mailintake.engine.factories import build_sink
from mailintake.engine.poll import Poller
from mailintake.errors import NetworkError
from mailintake.sinks.base import Delivery, MessageSink, Receipt
from mailintake.sources.graph import GraphSettings, GraphSource
from mailintake.status import mailbox_status
from mailintake.store import import_views
from mailintake.store.repo import Store
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.cli import run_cli
from tests.support.graph import app_token, configure, delegated, raw, sign_in
from tests.support.oauth import ANNA, GRAPH_APP


def mailbox(graph: GraphEmulator, tmp_path: Path, what: str, count: int) -> tuple[str, list[str]]:
    address = f"{what}-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    return address, [graph.deliver(address, raw(n)) for n in range(count)]


# --- after-import actions and folders ------------------------------------------------------


def test_a_404_on_mark_read_counts_only_when_a_get_confirms_it(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, ids = mailbox(graph, tmp_path, "confirm", 3)
    graph.faults.fail_message(ids[0], "patch", 404, "ErrorItemNotFound")
    out = tmp_path / "out"
    configure(store, idp, graph.base_url, out, username=address)
    result = Poller(store, home).poll("claims")
    assert len(list(out.glob("claims/*/*/message.eml"))) == 3  # written and recorded
    assert result.error is not None
    assert f"Graph answered 404 ErrorItemNotFound to mark_read of message {ids[0]}" in (
        result.error
    )
    assert "still in 'inbox' and unread" in result.error
    assert [m["isRead"] for m in graph.messages(address)] == [False, True, True]
    again = Poller(store, home).poll("claims")  # the pending action is done now
    assert (again.imported, again.error) == (0, None)
    assert all(m["isRead"] for m in graph.messages(address))


def test_a_404_for_a_message_really_gone_counts_as_done(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    """Someone deletes the message while it is imported: the move's 404 is confirmed by a
    GET that finds nothing, and the action is done."""
    address, ids = mailbox(graph, tmp_path, "gone", 2)
    graph.add_folder(address, "Processed")

    class Deleting:
        def __init__(self, sink: MessageSink) -> None:
            self.sink = sink
            self.overlapping_batches = sink.overlapping_batches

        def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
            box = graph.store.mailbox(address)
            assert box is not None
            with graph.store.lock:
                box.remove(box.messages[ids[0]])
            return self.sink.deliver(batch)

        def close(self) -> None:
            self.sink.close()

    configure(
        store,
        idp,
        graph.base_url,
        tmp_path / "out",
        username=address,
        after_import="move",
        move_to="Processed",
    )
    result = Poller(store, home, sink_factory=lambda *a: Deleting(build_sink(*a))).poll("claims")
    assert (result.imported, result.error) == (2, None)
    assert [m["id"] for m in graph.messages(address, "Processed")] == [ids[1]]


def test_a_move_that_answers_404_but_leaves_the_message_fails(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, ids = mailbox(graph, tmp_path, "stays", 1)
    graph.faults.fail_message(ids[0], "move", 404, "ErrorItemNotFound")
    configure(
        store,
        idp,
        graph.base_url,
        tmp_path / "out",
        username=address,
        after_import="move",
        move_to="deleteditems",
    )
    result = Poller(store, home).poll("claims")
    assert result.error is not None
    assert "to move of message" in result.error
    assert "still in 'inbox'" in result.error
    assert len(graph.messages(address)) == 1


def test_a_404_for_a_message_moved_elsewhere_is_not_a_done_move(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    """A rule files the message elsewhere while it is imported, and the move answers 404:
    the message is neither in the folder nor in move_to, which the failure says."""
    address, ids = mailbox(graph, tmp_path, "filed", 1)
    graph.add_folder(address, "Processed")
    graph.faults.fail_message(ids[0], "move", 404, "ErrorItemNotFound")

    class Filing:
        def __init__(self, sink: MessageSink) -> None:
            self.sink = sink
            self.overlapping_batches = sink.overlapping_batches

        def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
            box = graph.store.mailbox(address)
            assert box is not None
            with graph.store.lock:
                target = box.folder("archive")
                assert target is not None
                box.place(box.messages[ids[0]], target)
            return self.sink.deliver(batch)

        def close(self) -> None:
            self.sink.close()

    configure(
        store,
        idp,
        graph.base_url,
        tmp_path / "out",
        username=address,
        after_import="move",
        move_to="Processed",
    )
    result = Poller(store, home, sink_factory=lambda *a: Filing(build_sink(*a))).poll("claims")
    assert result.error is not None
    assert f"to move of message {ids[0]}, but the message is in another folder than " in (
        result.error
    )
    assert "'Processed'; the action is not recorded as done" in result.error
    assert graph.folder_of(address, ids[0]) == "archive"


def test_a_well_known_move_to_the_mailbox_lacks_stops_before_importing(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "noarchive", 1)
    graph.remove_folder(address, "archive")
    out = tmp_path / "out"
    configure(
        store, idp, graph.base_url, out, username=address, after_import="move", move_to="archive"
    )
    result = Poller(store, home).poll("claims")
    assert result.imported == 0
    assert result.error is not None
    assert result.error.startswith(
        f"claims: Graph has no folder named 'archive' in {address}; the folders there: "
    )
    assert "Inbox" in result.error
    assert "Archive," not in result.error
    assert list(out.glob("claims/*/*/message.eml")) == []
    assert len(graph.messages(address)) == 1


# --- refusals, with the fix ----------------------------------------------------------------


def test_delegates_without_rights_are_told_the_fix(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    team = f"team-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(team)
    graph.deliver(team, raw(1))
    configure(
        store,
        idp,
        graph.base_url,
        tmp_path / "out",
        username=ANNA,
        shared_mailbox=team,
        oauth=delegated(idp),
    )
    sign_in(store)
    # Not a delegate, and Exchange says "not found" (404 ErrorItemNotFound) for it.
    graph.faults.no_rights_as = "ErrorItemNotFound"
    missing = Poller(store, home).poll("claims")
    assert missing.error is not None
    assert f"Graph answered 404 ErrorItemNotFound for the folders of {team}" in missing.error
    assert f"Add-MailboxPermission -Identity {team} -User {ANNA}" in missing.error
    assert missing.state == "error"
    # A delegate without rights on the folders: 404 ErrorFolderNotFound, the same fix.
    graph.add_delegate(team, ANNA, rights="no_folders")
    folders = Poller(store, home).poll("claims")
    assert folders.error is not None
    assert "404 ErrorFolderNotFound" in folders.error
    assert "needs Full Access" in folders.error
    # A read-only delegate: imported, the mark-read refused, with the way out.
    graph.add_delegate(team, ANNA, rights="read")
    readonly = Poller(store, home).poll("claims")
    assert len(list((tmp_path / "out").glob("claims/*/*/message.eml"))) == 1
    assert readonly.error is not None
    assert "ErrorAccessDenied" in readonly.error
    assert "may read" in readonly.error
    assert "after_import: keep" in readonly.error
    assert graph.messages(team)[0]["isRead"] is False


def test_an_application_access_policy_gets_the_rbac_fix(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "policy", 1)
    graph.faults.app_policies[GRAPH_APP] = {"someone-else@contoso.onmicrosoft.com"}
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert result.imported == 0
    assert result.error is not None
    assert "ErrorAccessDenied: Access to OData is disabled." in result.error
    assert f"New-ServicePrincipal -AppId {GRAPH_APP}" in result.error
    assert "New-ManagementRoleAssignment" in result.error
    assert f"Test-ApplicationAccessPolicy -Identity {address} -AppId {GRAPH_APP}" in result.error
    assert "Role Based Access Control for Applications in Exchange Online" in result.error
    assert "Mail.ReadWrite and Full Access" not in result.error


# --- paging -------------------------------------------------------------------------------


def test_a_missing_next_link_is_noticed_and_the_folder_listed_again(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "nolink", 30)
    graph.faults.page_cap = 10  # Outlook's short pages
    graph.faults.drop_next_links = 1  # the first listing stops after its first page
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (30, 0, None)
    assert result.warnings == [
        "claims: Graph listed 10 of the 30 messages in 'inbox'; listed again with pages of 25"
    ]
    assert result.as_dict()["warnings"] == result.warnings
    assert all(m["isRead"] for m in graph.messages(address))
    with store.read() as repo:
        (row,) = mailbox_status(repo)
    assert row["last_warning"] == result.warnings[0]
    graph.deliver(address, raw(99))
    clean = Poller(store, home).poll("claims")  # a pass without a warning clears it
    assert (clean.imported, clean.warnings) == (1, [])
    with store.read() as repo:
        assert mailbox_status(repo)[0]["last_warning"] is None


def test_mailintake_poll_prints_the_warning(
    store: Store,
    home: Path,
    database_url: str,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
) -> None:
    address, _ = mailbox(graph, tmp_path, "cli", 4)
    graph.faults.page_cap = 2
    graph.faults.drop_next_links = 1
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url, COLUMNS="300")
    done = run_cli(["poll", "claims"], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "claims: imported 4, skipped 0, failed 0; warning: claims: Graph listed 2 of the 4 "
        "messages in 'inbox'; listed again with pages of 25"
    )


def test_paging_over_items_that_are_not_messages_loses_nothing(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "skips", 230)
    graph.faults.interleave = 7
    graph.faults.timeout_without_select = 50  # the listing always selects
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.error, result.warnings) == (230, None, [])


# --- throttling, 503 and 504 ---------------------------------------------------------------


def test_the_request_budget_is_honoured(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "budget", 12)
    graph.faults.budget = (10, 1.0)  # Graph's is 10,000 per 600 s (faults.BUDGET)
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.error) == (12, None)
    assert graph.stats["throttled"] >= 1
    assert all(m["isRead"] for m in graph.messages(address))


def test_503_and_504_are_retried(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "flaky", 3)
    graph.faults.fail_next(1, 503, retry_after=1)
    graph.faults.fail_next(1, 504)
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.error) == (3, None)


def test_503_and_504_without_end_give_a_clear_remote_failure(
    tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "down", 1)
    token = app_token(idp)
    source = GraphSource(
        GraphSettings(graph.base_url, address, "inbox", "keep", None, attempts=3, backoff=0.01),
        lambda: token,
        "claims",
    )
    graph.faults.fail_next(2, 503)
    graph.faults.fail_next(1, 504)
    source.open()
    try:
        with pytest.raises(NetworkError) as failed:
            source.list_items()
    finally:
        source.close()
    assert str(failed.value).startswith(
        "claims: Graph kept failing: GET "
        f"{graph.base_url}/users/{quote(address)}/mailFolders/inbox answered 503, 503, 504 "
        "(GatewayTimeout: The gateway did not receive a response in time.) in 3 attempts"
    )
    assert "Microsoft's service is failing" in str(failed.value)


# --- one message's $value and its size ---------------------------------------------------


def test_value_failing_for_one_message_names_it(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, ids = mailbox(graph, tmp_path, "mime", 2)
    graph.faults.fail_message(ids[1], "value", 500, "ErrorMimeContentConversionFailed", 9)
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (1, 1, None)  # it fails alone
    with store.read() as repo:
        [listed] = import_views.problems(repo.conn, "claims")
    named = f"/messages/{quote(ids[1], safe='')}/$value: HTTP 500 ErrorMimeContentConversionFailed"
    assert named in listed["reason"]


def test_an_oversized_message_is_skipped_before_its_download(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, ids = mailbox(graph, tmp_path, "sizes", 1)
    big = EmailMessage()
    big["Subject"] = "Scan"
    big.set_content("attached")
    big.add_attachment(b"\0" * 300_000, maintype="application", subtype="pdf")
    large = graph.deliver(address, big.as_bytes(policy=email.policy.SMTP))
    configure(
        store, idp, graph.base_url, tmp_path / "out", username=address, max_message_size="200KB"
    )
    graph.reset_stats()
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (1, 1, None)
    downloads: dict[str, Any] = {
        path: n for path, n in graph.stats["by_path"].items() if path.endswith("/$value")
    }
    assert list(downloads) == [f"GET /v1.0/users/{address}/messages/{ids[0]}/$value"]
    assert large not in str(downloads)
    assert [m["isRead"] for m in graph.messages(address)] == [True, False]


def test_a_listing_that_refuses_the_size_expansion_goes_on_without_it(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address, _ = mailbox(graph, tmp_path, "noexpand", 3)
    graph.faults.refuse_expand = True
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (3, 0, None)
