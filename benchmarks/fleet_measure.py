"""What the fleet benchmark reads: ``mailintake worker`` processes and their structured log
lines (``poll.done``, ``poll.failed``, ``poll.busy``), their CPU time from /proc, the
database's counters, and the folder output (CONTRACT §5)."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks import cpu

POLLED = ("poll.done", "poll.failed")  # a pass that ran (imported or not)


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the epoch
    name: str  # poll.done, poll.failed, poll.busy, ...
    mailbox: str
    worker: str
    fields: dict[str, object]


@dataclass
class Worker:
    """A ``mailintake worker`` process, run on a host name of its own (a UTS namespace, as
    another machine would be) with its log lines as JSON in a file."""

    label: str  # its host name
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    _offset: int = 0
    events: list[Event] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.folder / "worker.log"

    @property
    def statements_file(self) -> Path:
        return self.folder / "statements"

    def start(self, environ: dict[str, str], options: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "benchmarks.fleet_worker"]
        command += ["--log-level", "info", "--log-json", "worker", *options]
        if os.geteuid() == 0 and shutil.which("unshare"):  # its own host name
            command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.label]
            command += [sys.executable, "-m", "benchmarks.fleet_worker"]
            command += ["--log-level", "info", "--log-json", "worker", *options]
        env = {
            **os.environ,
            **environ,
            "MAILINTAKE_HOME": str(self.folder / "home"),
            "MAILINTAKE_WORKER_NAME": self.label,  # where the worker takes a name from it
            "FLEET_STATEMENTS_FILE": str(self.statements_file),
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time of the worker and its descendants (the output's writer processes)."""
        return cpu.tree_seconds(self.pid)

    def statements(self) -> int:
        try:
            return int(self.statements_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> float:
        """kill -9; returns when it was sent."""
        os.kill(self.pid, signal.SIGKILL)
        at = time.time()
        assert self.process is not None
        self.process.wait()
        return at

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def read(self) -> list[Event]:
        """The log lines written since the last call (also kept in ``events``)."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        new = []
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # not a log line (the start-up message)
            if not isinstance(entry, dict) or "mailbox" not in entry:
                continue
            at = datetime.fromisoformat(str(entry.pop("timestamp"))).timestamp()
            name, mailbox = str(entry.pop("event")), str(entry.pop("mailbox"))
            new.append(Event(at, name, mailbox, self.label, entry))
        self.events.extend(new)
        return new


def polls(events: list[Event], start: float, end: float) -> list[Event]:
    return [e for e in events if e.name in POLLED and start <= e.at < end]


def gaps(events: list[Event], start: float, end: float, interval: float) -> list[float]:
    """Seconds between two passes over the same mailbox, both in [start, end); and for a
    mailbox not polled again before ``end``, the time since its last pass when that is
    already longer than the interval (a gap at least that long)."""
    times: dict[str, list[float]] = defaultdict(list)
    for event in polls(events, start, end):
        times[event.mailbox].append(event.at)
    found: list[float] = []
    for at in times.values():
        at.sort()
        found += [b - a for a, b in itertools.pairwise(at)]
        if end - at[-1] > interval:
            found.append(end - at[-1])
    return found


def early(events: list[Event], start: float, end: float, interval: float) -> int:
    """Passes in [start, end) that came less than half an interval after the mailbox's
    previous pass (by any worker): work the intervals did not ask for."""
    times: dict[str, list[float]] = defaultdict(list)
    for event in polls(events, start, end):
        times[event.mailbox].append(event.at)
    return sum(
        1
        for at in times.values()
        for a, b in itertools.pairwise(sorted(at))
        if b - a < interval / 2
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def failures(events: list[Event], start: float, end: float) -> Counter[str]:
    return Counter(
        str(e.fields.get("error", ""))[:120]
        for e in events
        if e.name == "poll.failed" and start <= e.at < end
    )


class Database:
    """A database of its own on the PostgreSQL server (dropped afterwards), and the
    server's count of its transactions (pg_stat_database: every worker's, nobody else's)."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.admin_url, self.name = admin_url, name

    def _run(self, statement: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(self.name)))

    def create(self) -> None:
        self.drop()
        self._run("CREATE DATABASE {}")

    def drop(self) -> None:
        self._run("DROP DATABASE IF EXISTS {} WITH (FORCE)")

    def transactions(self) -> tuple[int, int]:
        """Transactions, and sessions (connections) opened, in this database so far."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database "
                "WHERE datname = %s",
                (self.name,),
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def held_by(self, url: str, host: str) -> set[str]:
        """The mailboxes whose poll belongs to a worker on ``host`` now: the lease of a poll
        running (owner ids are host:pid:nonce) or, where the schedule is kept in the
        database, the claim of a poll (``mailboxes.polled_by``)."""
        pattern = host + ":%"
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT mailbox FROM leases WHERE owner LIKE %s", (pattern,))
            found = {str(name) for (name,) in rows}
            claims = conn.execute(
                "SELECT 1 FROM information_schema.columns "
                "WHERE table_name = 'mailboxes' AND column_name = 'polled_by'"
            ).fetchone()
            if claims:
                rows = conn.execute(
                    "SELECT name FROM mailboxes WHERE polled_by LIKE %s", (pattern,)
                )
                found |= {str(name) for (name,) in rows}
        return found


def output_counts(out: Path) -> Counter[str]:
    """How many times each Message-ID is in the folder output (metadata.json of each
    message directory: <out>/<mailbox>/<date>/<key>/)."""
    found: Counter[str] = Counter()
    for metadata in out.glob("*/*/*/metadata.json"):
        found[str(json.loads(metadata.read_text()).get("internet_message_id"))] += 1
    return found


def check_output(out: Path, sent: dict[str, str]) -> tuple[list[str], list[str], int]:
    """(missing, doubled, others): messages sent and not in the output, sent and there
    more than once, and how many in the output were never sent."""
    found = output_counts(out)
    missing = [m for m in sent if found.get(m, 0) == 0]
    doubled = [m for m in sent if found.get(m, 0) > 1]
    others = sum(n for m, n in found.items() if m not in sent)
    return missing, doubled, others


@dataclass
class Sample:
    """Counters read at one moment."""

    at: float
    cpu: dict[str, float]
    statements: dict[str, int]
    transactions: int
    sessions: int  # database connections opened
    tokens: int
    stand_ins: float  # CPU seconds of this process: the identity provider, the Graph emulator
    dovecot: float  # of Dovecot's processes


def sample(workers: list[Worker], database: Database, tokens: int, dovecot: int) -> Sample:
    own = os.times()
    return Sample(
        time.time(),
        {w.label: w.cpu_seconds() for w in workers},
        {w.label: w.statements() for w in workers},
        *database.transactions(),
        tokens,
        own.user + own.system,
        cpu.tree_seconds(dovecot),
    )
