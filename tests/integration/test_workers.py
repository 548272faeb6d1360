"""Several ``mailintake worker`` processes on one PostgreSQL database, importing from a real
Dovecot into folder outputs: each mailbox is polled by one of them per interval, and the
polls of a worker killed with SIGKILL (under another host name, so that no process check
can tell it is gone) are taken over by the survivor within 30 s; nothing is lost or doubled.
The killed worker's writer processes end with it."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.status import mailbox_status
from mailintake.store import leases, workers
from mailintake.store.repo import Store
from tests.support import launcher
from tests.support.dovecot import DAEMON_APP, DOMAIN, MailServer
from tests.support.mail import raw
from tests.support.oauth import microsoft_at

ROOT = Path(__file__).resolve().parents[2]
# Half a minute or more each, waiting for intervals and a lease: started first, so that the
# other tests run meanwhile instead of after them.
pytestmark = pytest.mark.slow


@pytest.fixture
def pg_settings(postgres_url: str, home: Path) -> Settings:
    return Settings(home=home, database_url=postgres_url)


@pytest.fixture
def pg_store(pg_settings: Settings) -> Iterator[Store]:
    store = open_store(pg_settings)
    yield store
    store.engine.dispose()


class Worker:
    """A ``mailintake worker`` process, its JSON log in a file."""

    def __init__(self, settings: Settings, log: Path, name: str, *options: str) -> None:
        self.log = log
        self.name = name
        env = {
            **os.environ,
            "MAILINTAKE_HOME": str(settings.home),
            "MAILINTAKE_DATABASE_URL": settings.database_url or "",
            "MAILINTAKE_WORKER_NAME": name,
            # The intervals alone: push would start passes sooner (test_push.py).
            "MAILINTAKE_IDLE_CONNECTIONS": "0",
            "PYTHONPATH": launcher.PYTHONPATH,
        }
        log.write_bytes(b"")
        self.process = launcher.start(
            ["-m", "mailintake", "--log-level", "info", "--log-json", "worker", *options],
            env=env,
            cwd=ROOT,
            stdout=Path(os.devnull),
            stderr=log,
        )

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                found.append(entry)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # as systemd stops it
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def boxes(
    store: Store, server: MailServer, out: Path, names: list[str], messages: int, interval: int
) -> dict[str, tuple[str, list[bytes]]]:
    """Mailboxes on Dovecot read with the daemon application, each with ``messages``
    messages, moved to Processed after import, into one folder output."""
    made: dict[str, tuple[str, list[bytes]]] = {}
    specs = []
    for name in names:
        user = server.add_user(f"{name}-{uuid.uuid4().hex[:8]}@{DOMAIN}")
        server.dovecot.add_delegate(DAEMON_APP, user)
        mail = [raw(n) for n in range(messages)]
        server.dovecot.deliver_many(user, mail)
        server.dovecot.create_folder(user, "Processed")
        made[name] = (user, mail)
        specs.append(
            {
                "name": name,
                "protocol": "imap",
                "host": server.dovecot.host,
                "port": server.dovecot.imap_port,
                "security": "none",
                "username": user,
                "after_import": "move",
                "move_to": "Processed",
                "poll_interval": interval,
                "output": "capture",
                "oauth": server.app_grant(),
            }
        )
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(server.idp.base_url)],
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": specs,
        },
        {},
    )
    return made


def until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.2)


def written(out: Path, name: str) -> list[bytes]:
    return sorted(p.read_bytes() for p in out.glob(f"{name}/*/*/message.eml"))


def imported(store: Store, name: str) -> tuple[int, int, int]:
    with store.read() as repo:
        row = next(r for r in mailbox_status(repo) if r["name"] == name)
    return row["imported"], row["failed"], row["pending"]


def moment(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(300)
def test_two_workers_poll_each_mailbox_once_per_interval(
    pg_store: Store, pg_settings: Settings, tmp_path: Path, mail_server: MailServer
) -> None:
    interval = 10  # the shortest interval allowed
    names = [f"shared{n}" for n in range(6)]
    out = tmp_path / "out"
    made = boxes(pg_store, mail_server, out, names, messages=3, interval=interval)
    alpha = Worker(pg_settings, tmp_path / "alpha.log", "alpha", "--concurrency", "2")
    beta = Worker(pg_settings, tmp_path / "beta.log", "beta", "--concurrency", "2")

    def polls() -> Counter[str]:
        return Counter(str(e["mailbox"]) for w in (alpha, beta) for e in w.events("poll.done"))

    started = time.monotonic()
    try:
        until(lambda: all(polls()[n] >= 2 for n in names), 120)
        late = {name: raw(100 + n) for n, name in enumerate(names)}
        for name, message in late.items():  # new mail while they run
            mail_server.dovecot.deliver_many(made[name][0], [message])
        until(lambda: all(polls()[n] >= 4 for n in names), 120)
    finally:
        alpha.stop()
        beta.stop()
    print(f"{sum(polls().values())} polls in {time.monotonic() - started:.1f} s")

    assert (alpha.process.returncode, beta.process.returncode) == (0, 0)
    with pg_store.read() as repo:
        assert workers.listed(repo.conn) == []  # both stopped in order: no longer listed
    done = {w.name: w.events("poll.done") for w in (alpha, beta)}
    assert alpha.events("poll.failed") == []
    assert beta.events("poll.failed") == []
    assert alpha.events("poll.busy") == []
    assert beta.events("poll.busy") == []
    per_worker = {w: Counter(str(e["mailbox"]) for e in found) for w, found in done.items()}
    assert all(sum(c.values()) > 0 for c in per_worker.values()), per_worker  # work shared
    times: dict[str, list[float]] = defaultdict(list)
    for found in done.values():
        for entry in found:
            times[str(entry["mailbox"])].append(moment(entry))
    for name in names:
        polls = sorted(times[name])
        assert len(polls) >= 4, (name, per_worker)
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        # one poll per interval across both workers (jitter ±10 %, a poll's own duration)
        assert min(gaps) > 0.6 * interval, (name, gaps)
    for name, (user, mail) in made.items():
        expected = sorted([*mail, late[name]])
        assert written(out, name) == expected, name  # each exactly once
        assert sorted(mail_server.dovecot.messages(user, "Processed")) == expected
        assert imported(pg_store, name) == (len(expected), 0, 0)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (children, their children...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


@pytest.mark.timeout(300)
def test_a_killed_workers_mailboxes_are_taken_over_within_30_seconds(
    pg_store: Store, pg_settings: Settings, tmp_path: Path, mail_server: MailServer
) -> None:
    names = ["big0", "big1"]
    out = tmp_path / "out"
    made = boxes(pg_store, mail_server, out, names, messages=600, interval=3600)
    doomed = Worker(pg_settings, tmp_path / "doomed.log", "far-away-host", "--concurrency", "4")
    survivor: Worker | None = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until both imports are under way
            counts = [len(list(out.glob(f"{n}/*/*/message.eml"))) for n in names]
            if all(c > 0 for c in counts):
                break
            assert doomed.process.poll() is None, doomed.log.read_text()
            time.sleep(0.05)
        survivor = Worker(pg_settings, tmp_path / "survivor.log", "survivor")
        helpers = descendants(doomed.process.pid)
        assert helpers, "the folder output's writer processes have started"
        with pg_store.read() as repo:
            held = {n: leases.holder(repo.conn, n) for n in names}
        killed = time.monotonic()
        doomed.process.kill()
        doomed.process.wait()
        while alive(helpers) and time.monotonic() < killed + 2:
            time.sleep(0.05)
        assert alive(helpers) == set(), "writer processes outlived the killed worker"

        unfinished = [n for n in names if len(written(out, n)) < len(made[n][1])]
        assert unfinished, "the kill came after the imports ended"
        assert all(str(held[n]).startswith("far-away-host:") for n in unfinished), held
        taken: dict[str, float] = {}
        while len(taken) < len(unfinished) and time.monotonic() < killed + 60:
            with pg_store.read() as repo:
                for name in unfinished:
                    owner = leases.holder(repo.conn, name) or ""
                    finished = imported(pg_store, name)[0] == len(made[name][1])
                    if name not in taken and (owner.startswith("survivor:") or finished):
                        taken[name] = time.monotonic() - killed
            time.sleep(0.1)
        assert sorted(taken) == sorted(unfinished), survivor.log.read_text()[-3000:]
        assert max(taken.values()) <= 30, taken

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(imported(pg_store, n)[0] == len(made[n][1]) for n in names):
                break
            time.sleep(0.2)
    finally:
        doomed.stop()
        if survivor is not None:
            survivor.stop()
    for name, (user, mail) in made.items():
        assert written(out, name) == sorted(mail), name  # nothing lost, nothing doubled
        assert mail_server.dovecot.messages(user) == []
        assert sorted(mail_server.dovecot.messages(user, "Processed")) == sorted(mail)
        assert imported(pg_store, name) == (len(mail), 0, 0)
    print(f"taken over after {taken} s")
