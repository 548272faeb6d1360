"""The folder output removes and renames only inside its own mailbox's folders."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailintake.errors import SinkError
from mailintake.sinks.base import Delivery, Receipt
from mailintake.sinks.folder import FolderSink

RECEIVED = datetime(2026, 11, 23, 10, tzinfo=UTC)


def delivery(mailbox: str, key: str, n: int = 1) -> Delivery:
    raw = f"Subject: message {n}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody {n}\r\n"
    return Delivery(mailbox, "pop3", key, {"uidl": key}, raw.encode(), RECEIVED)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below the output and its bytes."""
    return {
        os.fspath(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def output(tmp_path: Path) -> Path:
    """An output holding other mailboxes' delivered messages, and a half-written one."""
    root = tmp_path / "capture"
    sink = FolderSink(root)
    try:
        for mailbox in ("invoices", "claims"):
            results = sink.deliver([delivery(mailbox, f"pop3-{n}", n) for n in range(3)])
            assert all(isinstance(r, Receipt) and not r.already for r in results)
    finally:
        sink.close()
    half = root / ".incoming" / "orders" / "pop3-9.0badf00d"
    half.mkdir(parents=True)
    (half / "message.eml").write_bytes(b"Subject: half")
    return root


@pytest.mark.parametrize("mailbox", ["..", ".", "", ".hidden", "a/b", "..\\x", "../invoices"])
def test_a_mailbox_name_outside_its_own_folder_is_refused(output: Path, mailbox: str) -> None:
    before = snapshot(output)
    sink = FolderSink(output)
    try:
        for _ in range(2):  # every poll: the first one clears leftovers
            results = sink.deliver([delivery(mailbox, "pop3-1"), delivery(mailbox, "pop3-7", 7)])
            assert all(isinstance(r, SinkError) for r in results)
            assert f"mailbox name {mailbox!r}" in str(results[0])
    finally:
        sink.close()
    assert snapshot(output) == before  # nothing removed, renamed or added
    assert not list(output.glob("*/*/pop3-7"))


@pytest.mark.parametrize("key", ["..", ".", "", ".x", "a/b", "..\\..\\x"])
def test_a_message_key_outside_its_mailbox_is_refused(output: Path, key: str) -> None:
    before = snapshot(output)
    sink = FolderSink(output)
    try:
        refused, fine = sink.deliver([delivery("invoices", key, 5), delivery("invoices", "k6", 6)])
    finally:
        sink.close()
    assert isinstance(refused, SinkError)
    assert f"message key {key!r}" in str(refused)
    assert isinstance(fine, Receipt)
    after = snapshot(output)
    assert {name: after.get(name) for name in before} == before
    assert "invoices/2026-11-23/k6/message.eml" in after


def test_a_scratch_folder_that_leads_elsewhere_is_refused(output: Path) -> None:
    """A symbolic link in place of a mailbox's scratch folder (made by hand, or by an older
    version) does not make the output clear what it points to."""
    (output / ".incoming" / "invoices").rmdir()
    (output / ".incoming" / "invoices").symlink_to(output / "claims" / "2026-11-23")
    before = snapshot(output)
    sink = FolderSink(output)
    try:
        results = sink.deliver([delivery("invoices", "pop3-8", 8)])
    finally:
        sink.close()
    assert isinstance(results[0], SinkError)
    assert "its scratch folder" in str(results[0])
    assert snapshot(output) == before


def test_a_mailbox_folder_that_leads_elsewhere_is_refused(output: Path) -> None:
    (output / "orders").symlink_to(output / "claims")
    before = snapshot(output)
    sink = FolderSink(output)
    try:
        results = sink.deliver([delivery("orders", "pop3-1", 8)])
    finally:
        sink.close()
    assert isinstance(results[0], SinkError)
    assert "its folder" in str(results[0])
    assert snapshot(output) == before


def test_its_own_leftovers_are_cleared_and_others_kept(output: Path) -> None:
    before = snapshot(output)
    sink = FolderSink(output)
    try:
        (result,) = sink.deliver([delivery("orders", "pop3-1")])
    finally:
        sink.close()
    assert isinstance(result, Receipt)
    assert not result.already
    after = snapshot(output)
    assert ".incoming/orders/pop3-9.0badf00d/message.eml" not in after
    kept = {k: v for k, v in before.items() if not k.startswith(".incoming/orders/")}
    assert {k: after[k] for k in kept} == kept


def test_attachments_keep_names_in_any_script(tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "names"
    message.set_content("see attachments")
    names = ["請求書.pdf", "🎉" * 80 + ".txt", "../../etc/passwd"]
    for name in names:
        message.add_attachment(b"data", maintype="application", subtype="pdf", filename=name)
    sink = FolderSink(tmp_path / "out")
    try:
        (receipt,) = sink.deliver(
            [Delivery("invoices", "imap", "k1", {"uid": 1}, message.as_bytes(), RECEIVED)]
        )
    finally:
        sink.close()
    assert isinstance(receipt, Receipt)
    written = sorted(p.name for p in Path(receipt.location, "attachments").iterdir())
    assert written == ["1_請求書.pdf", "2_" + "🎉" * 48 + ".txt", "3_passwd"]


def test_a_folder_of_another_message_is_not_taken_for_this_one(tmp_path: Path) -> None:
    """Two keys that name one folder (on a file system that ignores case, pop3-AAMk and
    pop3-aamk do): the second message is refused and stays on the server, not reported
    as delivered."""
    sink = FolderSink(tmp_path / "out")
    try:
        (first,) = sink.deliver([delivery("invoices", "pop3-AAMk", 1)])
        other = Delivery("invoices", "pop3", "pop3-AAMk", {"uidl": "aamk"}, b"x", RECEIVED)
        (refused,) = sink.deliver([other])
        (again,) = sink.deliver([delivery("invoices", "pop3-AAMk", 1)])
        assert isinstance(first, Receipt)
        (Path(first.location) / "metadata.json").unlink()  # taken by whatever reads the output
        (unknown,) = sink.deliver([delivery("invoices", "pop3-AAMk", 1)])
    finally:
        sink.close()
    assert isinstance(refused, SinkError)
    assert "holds another message" in str(refused)
    assert isinstance(again, Receipt)
    assert again.already
    assert isinstance(unknown, Receipt)
    assert unknown.already
    assert (Path(first.location) / "message.eml").read_bytes().endswith(b"body 1\r\n")
