"""A fleet of mailboxes on PostgreSQL polled by real ``mailintake worker`` processes: first one
worker, then two, then the second killed (kill -9) while it holds a mailbox. Mailboxes:
Graph (the emulator) and Dovecot over IMAP and POP3, app-only and user grants
(benchmarks/fleet_setup.py), all created by ``mailintake apply`` from one YAML file, read into
the folder output; messages are appended while the workers run.

Prints, measured in one run, each next to its target:
- polls per second against what the intervals ask (mailboxes / interval);
- the 95th percentile of the time between two passes over a mailbox, against the interval;
- the worker's CPU (its process and the output's writer processes, /proc) per idle mailbox
  per hour, over a window in which nothing new is appended;
- database statements per poll, counted in the worker by a SQLAlchemy listener that the
  benchmark's wrapper adds (benchmarks/fleet_worker.py; the product counts nothing), and
  transactions and connections opened per poll from PostgreSQL's pg_stat_database (the
  benchmark's own database);
- token requests per poll, and over the run against one per grant per token lifetime;
- the takeover time: from the kill -9 of the second worker (on a host name of its own)
  until every mailbox it held is polled by the other;
- messages lost or doubled: every appended message is in the output exactly once.

Passes are read from the workers' JSON log lines (``poll.done``, ``poll.failed``; refused
passes are ``poll.busy``). Each run uses a database of its own on the server, dropped after.

    python -m benchmarks.bench_fleet [--mailboxes 1000] [--interval 60] [--minutes 5]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks import fleet_measure as measure
from benchmarks.fleet_setup import (
    SECRETS,
    Appender,
    Box,
    Servers,
    apply_file,
    plan,
    servers,
    sign_in_users,
    write_config,
)
from benchmarks.workdir import workdir
from mailintake.crypto import generate_key
from mailintake.observability.logging import configure as configure_logging
from mailintake.settings import Settings

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def name_option(label: str) -> list[str]:
    """``--name LABEL`` when this version's worker has a name option (lease owner ids)."""
    shown = subprocess.run(
        [sys.executable, "-m", "mailintake", "worker", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return ["--name", label] if "--name" in shown else []


def per(count: float, polls: int) -> str:
    return f"{count / polls:.2f}" if polls else "n/a"


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.interval: int = args.interval
        self.phase = args.minutes * 60.0
        self.count: int = args.mailboxes
        self.out = Path()

    def report_phase(
        self,
        label: str,
        events: list[measure.Event],
        first: measure.Sample,
        last: measure.Sample,
    ) -> tuple[float, float]:
        """Prints a phase's figures; returns its polls per second / what the intervals ask,
        and the 95th percentile of the gaps between two polls of a mailbox."""
        start, end = first.at, last.at
        window = end - start
        passes = measure.polls(events, start, end)
        asked = self.count / self.interval
        rate = len(passes) / window
        gaps = measure.gaps(events, start, end, self.interval)
        p95 = measure.percentile(gaps, 0.95)
        busy = sum(1 for e in events if e.name == "poll.busy" and start <= e.at < end)
        by_worker = Counter(e.worker for e in passes)
        early = measure.early(events, start, end, self.interval)
        print(f"{label} (window {window:.0f} s):")
        print(
            f"  polls per second: {rate:.2f} against {asked:.2f} asked by the intervals "
            f"= {rate / asked:.2f}x; by worker {dict(by_worker)}; less than half an interval "
            f"after the mailbox's previous poll: {early}; refused as busy: {busy}"
        )
        ratio = p95 / self.interval
        polled = {e.mailbox for e in passes}
        print(
            f"  gap between two polls of a mailbox: p95 {p95:.1f} s = {ratio:.2f}x the "
            f"interval, max {max(gaps, default=math.nan):.1f} s; mailboxes polled in the "
            f"window: {len(polled)} of {self.count}"
        )
        statements = sum(last.statements.values()) - sum(first.statements.values())
        transactions = last.transactions - first.transactions
        sessions = last.sessions - first.sessions
        tokens = last.tokens - first.tokens
        print(
            f"  per poll: {per(statements, len(passes))} SQL statements (counted in the "
            f"workers), {per(transactions, len(passes))} database transactions and "
            f"{per(sessions, len(passes))} connections opened (pg_stat_database), "
            f"{per(tokens, len(passes))} token requests ({tokens} in all)"
        )
        workers = sum(last.cpu.values()) - sum(first.cpu.get(k, 0.0) for k in last.cpu)
        print(
            f"  CPU: workers {workers / window:.0%} of a core, Dovecot "
            f"{(last.dovecot - first.dovecot) / window:.0%}, identity provider and Graph "
            f"emulator {(last.stand_ins - first.stand_ins) / window:.0%}"
        )
        failed = measure.failures(events, start, end)
        if failed:
            print(f"  failed polls: {sum(failed.values())}; most common: {failed.most_common(3)}")
        return rate / asked, p95

    def report_idle(
        self, events: list[measure.Event], first: measure.Sample, last: measure.Sample
    ) -> None:
        window = last.at - first.at
        importing = [
            e
            for e in events
            if e.name == "poll.done" and first.at <= e.at < last.at and e.fields.get("imported")
        ]
        for label, before in first.cpu.items():
            spent = last.cpu[label] - before
            hourly = spent / self.count / (window / 3600)
            print(
                f"  worker {label}'s CPU per idle mailbox per hour: {hourly * 1000:.1f} ms "
                f"({spent:.1f} s of CPU in {window:.0f} s with nothing appended; "
                f"{len(importing)} polls still imported earlier messages)"
            )

    def main(self) -> None:
        args = self.args
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request
        configure_logging("warning")  # the sign-ins made here
        print(
            f"fleet: {self.count} mailboxes, interval {self.interval} s, "
            f"{args.minutes} min per phase; {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
            flush=True,
        )
        url = make_url(args.database_url)
        fleet_db = f"mailintake_fleet_{os.getpid()}"
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        database = measure.Database(admin, fleet_db)
        database.create()
        try:
            with workdir() as tmp:
                root = Path(tmp)
                root.chmod(0o711)  # Dovecot's processes reach their folders below it
                db_url = url.set(database=fleet_db).render_as_string(hide_password=False)
                self.fleet(root, database, db_url)
        finally:
            database.drop()

    def fleet(self, root: Path, database: measure.Database, db_url: str) -> None:
        environ = {
            "MAILINTAKE_DATABASE_URL": db_url,
            "MAILINTAKE_SECRET_KEY": generate_key(),
            **SECRETS,
        }
        boxes = plan(self.count)
        self.out = root / "out"
        with servers(root) as fleet:
            started = time.perf_counter()
            for box in boxes:
                fleet.add(box)
                fleet.append(box)  # one message each to import at the first poll
            made = time.perf_counter() - started
            config = root / "fleet.yaml"
            write_config(config, fleet.document(boxes, self.interval, self.out))
            home = root / "setup"
            applied = apply_file(config, {**environ, "MAILINTAKE_HOME": str(home)})
            settings = Settings(
                home=home, database_url=db_url, secret_key=environ["MAILINTAKE_SECRET_KEY"]
            )
            signed = sign_in_users(settings, boxes)
            users = sum(1 for b in boxes if b.grant == "user")
            kinds = Counter(f"{b.protocol} {b.grant}" for b in boxes)
            print(f"mailboxes: {dict(kinds)}")
            print(
                f"set-up: mailboxes on the servers with a first message each {made:.1f} s; "
                f"mailintake apply of one YAML file with {self.count} mailboxes {applied:.1f} s; "
                f"{users} user grants signed in through the login page {signed:.1f} s",
                flush=True,
            )
            appender = Appender(fleet, boxes, self.interval / max(1.0, 0.05 * self.count))
            a = measure.Worker("fleet-a", root / "worker-a")
            b = measure.Worker("fleet-b", root / "worker-b")
            try:
                self.phases(fleet, boxes, appender, a, b, database, environ, db_url)
            finally:
                appender.stop()
                for worker in (a, b):
                    worker.stop()

    def phases(
        self,
        fleet: Servers,
        boxes: list[Box],
        appender: Appender,
        a: measure.Worker,
        b: measure.Worker,
        database: measure.Database,
        environ: dict[str, str],
        db_url: str,
    ) -> None:
        idp = fleet.idp
        interval, phase = self.interval, self.phase
        tokens_before = len(idp.token_requests)
        dovecot = fleet.dovecot.process.pid
        # Phase 1: one worker. Messages are appended in its first third; the idle window
        # begins an interval after the last one (each mailbox polled since) and ends it.
        run_start = time.time()
        a.start(environ, name_option(a.label))
        appender.resume()
        until(run_start + interval)
        s1 = measure.sample([a], database, len(idp.token_requests), dovecot)
        until(run_start + phase / 3)
        appender.pause()
        until(max(run_start + phase / 3 + interval, run_start + phase / 2))
        idle = measure.sample([a], database, len(idp.token_requests), dovecot)
        until(run_start + phase)
        s2 = measure.sample([a], database, len(idp.token_requests), dovecot)
        a.read()
        one, p95_one = self.report_phase("phase 1, one worker", a.events, s1, s2)
        print(
            f"  target: one worker keeps the interval, p95 gap <= 1.2x the interval: "
            f"{p95_one / interval:.2f}x {verdict(p95_one <= 1.2 * interval)} "
            f"(polls {one:.2f}x what the intervals ask)"
        )
        self.report_idle(a.events, idle, s2)
        print(flush=True)
        # Phase 2: a second worker, on another host name, joins.
        appender.resume()
        b.start(environ, name_option(b.label))
        s3 = measure.sample([a, b], database, len(idp.token_requests), dovecot)
        until(s3.at + phase)
        s4 = measure.sample([a, b], database, len(idp.token_requests), dovecot)
        a.read()
        b.read()
        both = a.events + b.events
        two, _p95 = self.report_phase("phase 2, two workers", both, s3, s4)
        print(
            f"  target: two workers together poll at most 1.1x what the intervals ask: "
            f"{two:.2f}x {verdict(two <= 1.1)}"
        )
        for label, before in s3.cpu.items():
            spent = s4.cpu[label] - before
            print(f"  worker {label}'s CPU: {spent:.1f} s in {s4.at - s3.at:.0f} s")
        print(flush=True)
        self.takeover(fleet, appender, a, b, database, db_url)
        self.tokens(fleet, boxes, tokens_before, run_start)
        print(f"machine load average at the end: {os.getloadavg()}")

    def takeover(
        self,
        fleet: Servers,
        appender: Appender,
        a: measure.Worker,
        b: measure.Worker,
        database: measure.Database,
        db_url: str,
    ) -> None:
        url = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
        held: set[str] = set()
        deadline = time.time() + 2 * self.interval
        while True:  # kill it while it holds a mailbox: stopped, its leases stay as they are
            b.pause()
            held = database.held_by(url, b.label)
            if held or time.time() > deadline:
                break
            b.resume()
            time.sleep(0.02)
        killed = b.kill()
        until(killed + self.interval)  # messages still arrive meanwhile
        appender.pause()
        out = self.args.drain
        retaken: dict[str, float] = {}
        missing: list[str] = list(fleet.sent)
        while time.time() < killed + out:
            for event in a.read():
                if event.name in measure.POLLED and event.at > killed:
                    retaken.setdefault(event.mailbox, event.at - killed)
            missing, _doubled, _others = measure.check_output(self.out, dict(fleet.sent))
            if not missing and held <= retaken.keys():
                break
            time.sleep(2)
        a.stop()
        a.read()
        print(f"takeover after kill -9 of worker {b.label} holding {len(held)} mailbox(es):")
        if held:
            waits = [retaken.get(m, math.inf) for m in held]
            worst = max(waits)
            shown = f"{worst:.1f} s" if worst < math.inf else f"more than {out:.0f} s"
            soon = sum(1 for wait in waits if wait <= 30)
            print(
                f"  every mailbox it held polled again by {a.label} after {shown} "
                f"(median {sorted(waits)[len(waits) // 2]:.1f} s, {soon} of {len(waits)} "
                f"within 30 s) (target <= 30 s): {verdict(worst <= 30)}"
            )
        else:
            print(f"  it held no mailbox within {2 * self.interval} s: nothing to take over")
        sent = dict(fleet.sent)
        missing, doubled, others = measure.check_output(self.out, sent)
        print(
            f"messages: {len(sent)} sent (one per mailbox before, the rest appended during the "
            f"run), missing from the output {len(missing)}, doubled {len(doubled)}, in the "
            f"output but never sent {others} (target: none lost or doubled): "
            f"{verdict(not missing and not doubled and not others)}"
        )
        if missing or doubled:
            behind = sum(1 for m in missing if sent[m] in held)
            print(
                f"  missing: {sorted(missing)[:5]} ({behind} in mailboxes the killed worker "
                f"held, still on the server); doubled: {sorted(doubled)[:5]}"
            )

    def tokens(self, fleet: Servers, boxes: list[Box], before: int, run_start: float) -> None:
        requests = fleet.idp.token_requests[before:]
        by_grant = Counter(str(r.get("grant_type")) for r in requests)
        apps = len({b.protocol == "graph" for b in boxes if b.grant == "app"})  # 2 apps
        users = sum(1 for b in boxes if b.grant == "user")
        lifetime = fleet.idp.access_token_lifetime
        spent = time.time() - run_start
        allowed = (apps + users) * math.ceil(spent / lifetime)
        print(
            f"token requests over the run ({spent:.0f} s, token lifetime {lifetime} s): "
            f"{len(requests)} {dict(by_grant)} for {apps} applications and {users} user "
            f"grants; target <= one per grant per lifetime = {allowed}: "
            f"{verdict(len(requests) <= allowed)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=60, help="poll interval (s, >= 10)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of each phase")
    parser.add_argument(
        "--drain",
        type=float,
        default=360.0,
        help="seconds after the kill to wait for the other worker to take over and import "
        "every appended message",
    )
    parser.add_argument("--database-url", default=os.environ.get("FLEET_DATABASE_URL", POSTGRES))
    arguments = parser.parse_args()
    if arguments.minutes * 60 < 3 * arguments.interval:
        parser.error("--minutes: a phase must last three intervals at least")
    Run(arguments).main()
