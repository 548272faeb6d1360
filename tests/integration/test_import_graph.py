"""mailintake importing from the Graph mail emulator: paging, every after-import action with
immutable ids, throttling and the four-request limit, a shared mailbox with a delegated token."""

from __future__ import annotations

import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.poll import Poller
from mailintake.store.repo import Store
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.graph import configure, delegated, raw, sign_in
from tests.support.oauth import (
    ANNA,
    BORIS,
)


@pytest.mark.parametrize("action", ["mark_read", "move", "delete", "keep"])
def test_import_with_paging_and_each_action(
    store: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
    action: str,
) -> None:
    address = f"claims-{action}-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    messages = [raw(n) for n in range(230)]  # more than one page of 200
    for message in messages:
        graph.deliver(address, message)
    extra: dict[str, Any] = {"after_import": action, "username": address}
    if action == "move":
        graph.add_folder(address, "Processed")
        extra["move_to"] = "Processed"
    out = tmp_path / "out"
    configure(store, idp, f"{graph.base_url}", out, **extra)
    graph.reset_stats()
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (230, 0, None)
    assert {p.read_bytes() for p in out.glob("claims/*/*/message.eml")} == set(messages)
    inbox = graph.messages(address)
    if action == "mark_read":
        assert all(m["isRead"] for m in inbox)
    elif action == "keep":
        assert len(inbox) == 230
        assert not any(m["isRead"] for m in inbox)
    else:
        assert inbox == []
    if action == "move":
        assert len(graph.messages(address, folder=graph.folder_id(address, "Processed"))) == 230
    assert graph.stats["max_concurrency_seen"] <= 4
    again = Poller(store, home).poll("claims")
    assert (again.imported, again.error) == (0, None)


def test_throttling_and_the_concurrency_limit_are_honoured(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"busy-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    for n in range(40):
        graph.deliver(address, raw(n))
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    graph.reset_stats()
    graph.throttle_next(2, retry_after=1)
    graph.latency = 0.02
    try:
        result = Poller(store, home).poll("claims")
    finally:
        graph.latency = 0.0
    assert (result.imported, result.error) == (40, None)
    assert graph.stats["throttled"] >= 2
    assert graph.stats["max_concurrency_seen"] <= 4
    assert graph.stats["max_concurrency_seen"] >= 2  # and it does use parallel requests


def test_shared_mailbox_with_a_delegated_token(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    team = f"team-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(team, delegates={ANNA})
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
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.error) == (1, None)
    # Someone who is not a delegate gets the reason, and nothing is lost.
    other = f"other-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(other, delegates={BORIS})
    graph.deliver(other, raw(2))
    configure(
        store,
        idp,
        graph.base_url,
        tmp_path / "out",
        username=ANNA,
        shared_mailbox=other,
        oauth=delegated(idp),
    )
    denied = Poller(store, home).poll("claims")
    assert denied.imported == 0
    assert denied.error is not None
    assert "ErrorAccessDenied" in denied.error
    assert len(graph.messages(other)) == 1


def test_a_large_message_is_spooled_to_disk_and_arrives_whole(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    import hashlib
    import os

    address = f"scans-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    scan = os.urandom(8 << 20)  # a message of 11 MB: far over the spool threshold
    msg = EmailMessage()
    msg["From"] = "scanner@contoso.example"
    msg["Subject"] = "Scan"
    msg.set_content("attached")
    msg.add_attachment(scan, maintype="application", subtype="pdf", filename="scan.pdf")
    large = msg.as_bytes(policy=email.policy.SMTP)
    graph.deliver(address, large)
    graph.deliver(address, raw(1))
    out = tmp_path / "out"
    configure(store, idp, graph.base_url, out, username=address, after_import="delete")
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (2, 0, None)
    (folder,) = [p.parent for p in out.glob("claims/*/*/message.eml") if p.stat().st_size > 1e6]
    assert (folder / "message.eml").read_bytes() == large
    assert (folder / "attachments" / "1_scan.pdf").read_bytes() == scan
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["size"] == len(large)
    assert meta["sha256"] == hashlib.sha256(large).hexdigest()
    assert meta["attachments"][0]["sha256"] == hashlib.sha256(scan).hexdigest()
    assert list((home / "spool" / "claims").iterdir()) == []  # the spooled copy is gone
    assert graph.messages(address) == []


def test_a_batch_holds_at_most_64_mb_in_memory(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    """Graph lists no sizes, so the engine cannot end a batch at its byte limit: a message
    over SPOOL_FROM arrives as a spool file instead, and a batch holds at most BATCH_BYTES in
    memory, as an IMAP or POP3 batch does."""
    import os
    from collections.abc import Sequence

    from mailintake.engine.factories import build_sink
    from mailintake.engine.poll import BATCH, BATCH_BYTES
    from mailintake.sinks.base import Delivery, MessageSink, Receipt
    from mailintake.sources.graph import SPOOL_FROM
    from mailintake.spool import Spooled

    assert BATCH * SPOOL_FROM <= BATCH_BYTES
    address = f"scans-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    sent = []
    for n in range(4):
        msg = EmailMessage()
        msg["Subject"] = f"Scan {n}"
        msg.set_content("attached")
        size = SPOOL_FROM if n % 2 else 1000  # base64: a third larger than SPOOL_FROM
        msg.add_attachment(os.urandom(size), maintype="application", subtype="pdf")
        sent.append(msg.as_bytes(policy=email.policy.SMTP))
        graph.deliver(address, sent[-1])
    seen: list[tuple[int, bool]] = []

    class Recording:
        def __init__(self, sink: MessageSink) -> None:
            self.sink = sink
            self.overlapping_batches = sink.overlapping_batches

        def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
            seen.extend((d.size, isinstance(d.raw, Spooled)) for d in batch)
            return self.sink.deliver(batch)

        def close(self) -> None:
            self.sink.close()

    out = tmp_path / "out"
    configure(store, idp, graph.base_url, out, username=address, after_import="delete")
    poller = Poller(store, home, sink_factory=lambda *a: Recording(build_sink(*a)))
    result = poller.poll("claims")
    assert (result.imported, result.failed, result.error) == (4, 0, None)
    assert sorted(seen) == sorted((len(raw), len(raw) > SPOOL_FROM) for raw in sent)
    assert [len(raw) > SPOOL_FROM for raw in sent] == [False, True, False, True]
    written = sorted(p.read_bytes() for p in out.glob("claims/*/*/message.eml"))
    assert written == sorted(sent)
    assert list((home / "spool" / "claims").iterdir()) == []


def test_folders_below_others_are_written_as_paths(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    """folder and move_to name a folder below another by its path; a name that is not
    there is refused with the names that are."""
    address = f"claims-paths-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    invoices = graph.add_folder(address, "Invoices", parent="inbox")
    archive = graph.add_folder(address, "Archive 2026")
    done = graph.add_folder(address, "Done", parent=archive)
    messages = [raw(n) for n in range(3)]
    for message in messages:
        graph.deliver(address, message, folder=invoices)
    graph.deliver(address, raw(99))  # in the inbox itself: not imported
    out = tmp_path / "out"
    configure(
        store,
        idp,
        graph.base_url,
        out,
        username=address,
        folder="Inbox/Invoices",
        after_import="move",
        move_to="Archive 2026/Done",
    )
    result = Poller(store, home).poll("claims")
    assert (result.imported, result.failed, result.error) == (3, 0, None)
    assert {p.read_bytes() for p in out.glob("claims/*/*/message.eml")} == set(messages)
    assert graph.messages(address, folder=invoices) == []
    assert len(graph.messages(address, folder=done)) == 3
    assert len(graph.messages(address)) == 1

    configure(store, idp, graph.base_url, out, username=address, folder="Inbox/Invoice")
    wrong = Poller(store, home).poll("claims")
    assert wrong.error == (
        f"claims: Graph has no folder named 'Invoice' in 'Inbox' in {address}; the folders "
        "there: Invoices (a folder below another is written as its path, for example "
        "Inbox/Invoices)"
    )
    configure(store, idp, graph.base_url, out, username=address, folder="Invoices")
    top = Poller(store, home).poll("claims")
    assert top.error is not None
    assert f"Graph has no folder named 'Invoices' in {address}; the folders there: " in top.error
    assert "Archive 2026" in top.error


def test_a_move_to_folder_that_is_not_there_stops_the_poll_before_importing(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"claims-moveto-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    graph.deliver(address, raw(1))
    out = tmp_path / "out"
    configure(
        store,
        idp,
        graph.base_url,
        out,
        username=address,
        after_import="move",
        move_to="Processed",
    )
    result = Poller(store, home).poll("claims")
    assert result.imported == 0
    assert result.error is not None
    assert result.error.startswith(
        f"claims: Graph has no folder named 'Processed' in {address}; the folders there: "
    )
    assert list(out.glob("claims/*/*/message.eml")) == []
    assert len(graph.messages(address)) == 1
