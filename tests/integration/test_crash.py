"""Kill the importer (SIGKILL) at many points of an import in five batches from a real Dovecot;
after the restart, the output holds every message exactly once, byte for byte as the server
holds it, and every message got its after-import action (moved to Processed). The same with
two passes of the mailbox started at once, into a webhook that hangs for some messages, and
over POP3 with deletion (between DELE and QUIT)."""

from __future__ import annotations

import base64
import functools
import json
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.status import mailbox_status
from mailintake.store import checkpoints
from mailintake.store.repo import Store
from tests.support.dovecot import DOMAIN, MailServer
from tests.support.http_receiver import WebhookReceiver
from tests.support.launcher import run_on
from tests.support.mail import dovecot_mailbox, raw, sign_in
from tests.support.oauth import microsoft_at

pytestmark = [pytest.mark.both_databases, pytest.mark.slow]


ROOT = Path(__file__).resolve().parents[2]
# Five batches of 20 (the engine's are of 100, BATCH): every step of early and late batches
# on a mailbox a fifth the size.
MESSAGES, BATCH = 100, 20
# With --pause 10: messages come 10 ms apart when the kill is timed, a pass of a second or
# more, so that the timers below fall while it runs.
PAUSE_MS = "10"
# Where the process dies (tests/support/crash_poll.py): before listing, while bodies arrive,
# around each side of the output, of the store and of the after-import action, in early and
# late batches, and at moments in time that fall wherever the import happens to be.
POINTS = [
    "list:1",
    "fetched:1",
    "fetched:50",
    "deliver.before:1",
    "deliver.after:1",
    "deliver.after:4",
    "ack.before:1",
    "ack.before:3",
    "ack.after:1",
    "ack.after:5",
    "timer:250",
    "timer:600",
]


@functools.cache
def mail_of(count: int) -> tuple[bytes, ...]:
    """``count`` messages, made once per test process (each test delivers them to a
    mailbox of its own; making 500 takes seconds)."""
    return tuple(raw(n) for n in range(count))


def mail(count: int) -> list[bytes]:
    return list(mail_of(count))


@pytest.mark.parametrize(("number", "point"), list(enumerate(POINTS)), ids=POINTS)
def test_sigkill_at_any_point_loses_and_doubles_nothing(
    store: Store,
    settings: Settings,
    tmp_path: Path,
    mail_server: MailServer,
    number: int,
    point: str,
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"crash-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    messages = mail(MESSAGES)
    dovecot.deliver_many(user, messages)
    dovecot.create_folder(user, "Processed")
    name, out = f"box{number}", tmp_path / f"out{number}"
    dovecot_mailbox(store, server, out, name, user, after_import="move", move_to="Processed")

    crashed = run_on(
        settings,
        "-m",
        "tests.support.crash_poll",
        name,
        "--kill-at",
        point,
        "--batch",
        str(BATCH),
        "--pause",
        PAUSE_MS,
    )
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.stdout, crashed.stderr)

    again = run_on(settings, "-m", "mailintake", "poll", name, "--json")
    assert again.returncode == 0, (point, again.stdout, again.stderr)

    written = sorted(out.glob(f"{name}/*/*/message.eml"))
    assert len(written) == MESSAGES, point
    assert sorted(p.read_bytes() for p in written) == sorted(messages), point
    assert list((out / ".incoming" / name).iterdir()) == [], point  # no half-written copy
    assert dovecot.messages(user) == [], point
    assert sorted(dovecot.messages(user, "Processed")) == sorted(messages), point
    with store.read() as repo:
        status = next(row for row in mailbox_status(repo) if row["name"] == name)
    assert (status["imported"], status["failed"], status["pending"]) == (MESSAGES, 0, 0), (
        point,
        status,
    )


def crash_then_recover(
    settings: Settings, name: str, point: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """The import killed at ``point``, then run again to the end with the same options."""
    crashed = run_on(settings, "-m", "tests.support.crash_poll", name, "--kill-at", point, *options)
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.stdout, crashed.stderr)
    again = run_on(settings, "-m", "tests.support.crash_poll", name, *options)
    assert again.returncode == 0, (point, again.stdout, again.stderr)
    return again


def counts(store: Store, name: str) -> tuple[int, int, int]:
    with store.read() as repo:
        status = next(row for row in mailbox_status(repo) if row["name"] == name)
    return status["imported"], status["failed"], status["pending"]


def imap_box(
    store: Store, server: MailServer, name: str, messages: list[bytes], output: dict[str, Any]
) -> str:
    """A mailbox of ``messages`` on Dovecot, moved to Processed after import, into
    ``output``; signed in."""
    user = server.add_user(f"crash-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    server.dovecot.deliver_many(user, messages)
    server.dovecot.create_folder(user, "Processed")
    box = {
        "name": name,
        "protocol": "imap",
        "host": server.dovecot.host,
        "security": "none",
        "port": server.dovecot.imap_port,
        "username": user,
        "after_import": "move",
        "move_to": "Processed",
        "output": name,
        "oauth": server.user_grant(),
    }
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(server.idp.base_url)],
            "outputs": [{"name": name, **output}],
            "mailboxes": [box],
        },
        {},
    )
    sign_in(store, name, user, server)
    return user


# Two passes start at once in one process (each after a SIGKILL too): one gets the lease.
CONCURRENT_POINTS = ["fetched:150", "deliver.after:2", "ack.before:2", "ack.after:1", "timer:400"]


@pytest.mark.parametrize(
    ("number", "point"), list(enumerate(CONCURRENT_POINTS)), ids=CONCURRENT_POINTS
)
def test_two_passes_at_once_killed_anywhere_lose_and_double_nothing(
    store: Store,
    settings: Settings,
    tmp_path: Path,
    mail_server: MailServer,
    number: int,
    point: str,
) -> None:
    dovecot = mail_server.dovecot
    messages = mail(250)
    name, out = f"two{number}", tmp_path / f"two{number}"
    user = imap_box(store, mail_server, name, messages, {"type": "folder", "path": str(out)})
    again = crash_then_recover(settings, name, point, "--passes", "2")
    assert "another poll of this mailbox is running" in again.stdout, again.stdout

    written = sorted(out.glob(f"{name}/*/*/message.eml"))
    assert sorted(p.read_bytes() for p in written) == sorted(messages), point
    assert list((out / ".incoming" / name).iterdir()) == [], point
    assert dovecot.messages(user) == [], point
    assert sorted(dovecot.messages(user, "Processed")) == sorted(messages), point
    assert counts(store, name) == (len(messages), 0, 0), point


# The receiver hangs (answers after 1 s, the importer waits 0.3 s) on every try of one message
# in 25, never two in a row (the pass would stop at three); the others go through.
HANGING_POINTS = ["deliver.after:1", "deliver.after:3", "ack.before:2", "ack.after:2", "timer:900"]


@pytest.mark.parametrize(("number", "point"), list(enumerate(HANGING_POINTS)), ids=HANGING_POINTS)
def test_a_hanging_webhook_killed_anywhere_loses_and_doubles_nothing(
    store: Store,
    settings: Settings,
    mail_server: MailServer,
    receiver: WebhookReceiver,
    number: int,
    point: str,
) -> None:
    dovecot = mail_server.dovecot
    receiver.fail_first = 0
    messages = mail(250)
    name = f"hook{number}"
    user = imap_box(store, mail_server, name, messages, {"type": "webhook", "url": receiver.url})
    receiver.hang = 1.0
    receiver.hangs = lambda key: int(key.rsplit("-", 1)[1]) % 25 == 7  # by UID
    crashed = run_on(
        settings,
        "-m",
        "tests.support.crash_poll",
        name,
        "--kill-at",
        point,
        "--webhook-wait",
        "0.3",
    )
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.stdout, crashed.stderr)
    hung = {key for key in receiver.tries if key.startswith(f"{name}/") and receiver.hanging(key)}
    # A kill at a moment (timer:) may come before the first message that hangs.
    assert hung or point.startswith("timer:"), point  # it hung for some
    receiver.hang = 0.0  # back: the rest goes through
    again = run_on(settings, "-m", "mailintake", "poll", name, "--json")
    assert again.returncode == 0, (point, again.stdout, again.stderr)

    kept: dict[str, bytes] = {}  # the receiver keeps one copy per Idempotency-Key
    for key, body in receiver.seen:
        if key.startswith(f"{name}/"):
            message = base64.b64decode(str(body["message"]))
            assert kept.setdefault(key, message) == message, point  # a repeat is the same
    assert sorted(kept.values()) == sorted(messages), point
    assert hung <= set(kept), point  # what hung went through later
    assert dovecot.messages(user) == [], point
    assert sorted(dovecot.messages(user, "Processed")) == sorted(messages), point
    assert counts(store, name) == (len(messages), 0, 0), point


# POP3 deletes at QUIT: killed before it (after DELE), and around the batches before that.
POP3_POINTS = ["commit:1", "ack.after:2", "deliver.after:2"]


@pytest.mark.parametrize(("number", "point"), list(enumerate(POP3_POINTS)), ids=POP3_POINTS)
def test_pop3_killed_between_dele_and_quit_loses_and_keeps_nothing(
    store: Store,
    settings: Settings,
    tmp_path: Path,
    mail_server: MailServer,
    number: int,
    point: str,
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"crash-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    messages = mail(250)
    dovecot.deliver_many(user, messages)
    name, out = f"pop{number}", tmp_path / f"pop{number}"
    dovecot_mailbox(store, server, out, name, user, "pop3", after_import="delete")
    crash_then_recover(settings, name, point)

    written = sorted(out.glob(f"{name}/*/*/message.eml"))
    assert sorted(p.read_bytes() for p in written) == sorted(messages), point
    assert dovecot.messages(user) == [], point  # deleted, none left for ever
    assert counts(store, name) == (len(messages), 0, 0), point


@pytest.mark.timeout(600)
def test_killed_between_record_and_checkpoint_imports_nothing_twice(
    store: Store, settings: Settings, tmp_path: Path, mail_server: MailServer
) -> None:
    """The IMAP checkpoint moves past a batch only once it is recorded and acknowledged:
    killed in between, the next poll lists that batch again and skips it as recorded."""
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"crash-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    messages = mail(250)  # batches of 100, 100 and 50
    dovecot.deliver_many(user, messages)
    name, out = "checkpointed", tmp_path / "checkpointed"
    dovecot_mailbox(store, server, out, name, user)

    # The second batch is recorded and marked read on the server; the process dies before
    # it is marked acknowledged and before the checkpoint moves past it.
    crashed = run_on(settings, "-m", "tests.support.crash_poll", name, "--kill-at", "ack.after:2")
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)
    with store.read() as repo:
        checkpoint = checkpoints.load(repo.conn, name, "INBOX")
    assert checkpoint is not None
    assert checkpoint.last_uid == 100
    assert counts(store, name) == (200, 0, 100)  # recorded: 200; not marked acknowledged: 100

    again = run_on(settings, "-m", "mailintake", "poll", name, "--json")
    assert again.returncode == 0, (again.stdout, again.stderr)
    (summary,) = json.loads(again.stdout)["mailboxes"]
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (50, 100, 0)
    written = sorted(p.read_bytes() for p in out.glob(f"{name}/*/*/message.eml"))
    assert written == sorted(messages)
    assert all("\\Seen" in flags for flags in dovecot.flags(user))
    assert counts(store, name) == (250, 0, 0)
    with store.read() as repo:
        assert checkpoints.load(repo.conn, name, "INBOX") == checkpoints.Checkpoint(
            "INBOX", checkpoint.uidvalidity, 250
        )
    last = run_on(settings, "-m", "mailintake", "poll", name, "--json")
    (summary,) = json.loads(last.stdout)["mailboxes"]
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (0, 0, 0)
