"""Kill the importer (SIGKILL) at many points of a 500-message import from a real Dovecot;
after the restart, the output holds every message exactly once, byte for byte as the server
holds it, and every message got its after-import action (moved to Processed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mailintake.settings import Settings
from mailintake.status import mailbox_status
from mailintake.store.repo import Store
from tests.integration.test_import_dovecot import configure, raw, sign_in
from tests.support.dovecot import DOMAIN, MailServer, mail_server

__all__ = ["mail_server"]

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 500  # five batches of 100
# Where the process dies (tests/support/crash_poll.py): before listing, while bodies arrive,
# around each side of the output, of the store and of the after-import action, in early and
# late batches, and at moments in time that fall wherever the import happens to be.
POINTS = [
    "list:1",
    "fetched:1",
    "fetched:250",
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


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MAILINTAKE_HOME": str(settings.home),
        "MAILINTAKE_DATABASE_URL": settings.database_url or "",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.timeout(600)
def test_sigkill_at_any_point_loses_and_doubles_nothing(
    store: Store, settings: Settings, tmp_path: Path, mail_server: MailServer
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    for number, point in enumerate(POINTS):
        user = server.add_user(f"crash-{uuid.uuid4().hex[:8]}@{DOMAIN}")
        messages = [raw(n) for n in range(MESSAGES)]
        dovecot.deliver_many(user, messages)
        dovecot.create_folder(user, "Processed")
        name, out = f"box{number}", tmp_path / f"out{number}"
        configure(
            store,
            server,
            out,
            {
                "name": name,
                "protocol": "imap",
                "port": dovecot.imap_port,
                "username": user,
                "after_import": "move",
                "move_to": "Processed",
                "oauth": server.user_grant(),
            },
        )
        sign_in(store, name, user, server)

        crashed = run(settings, "-m", "tests.support.crash_poll", name, "--kill-at", point)
        assert crashed.returncode == -signal.SIGKILL, (point, crashed.stdout, crashed.stderr)

        again = run(settings, "-m", "mailintake", "poll", name, "--json")
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
