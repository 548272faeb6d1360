"""Scheduling with several workers: N mailboxes on a real Dovecot, all due every INTERVAL
seconds, polled by W ``mailintake worker`` processes sharing one PostgreSQL database. Prints
polls per second, the gaps between two polls of one mailbox (kept: about the interval), how
many polls each worker made, and polls refused because another held the mailbox (0: no
mailbox was claimed twice).

    python -m benchmarks.bench_scheduler [--mailboxes 200] [--interval 30] [--workers 2]
        [--concurrency 16] [--seconds 120] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks.dovecot_boxes import daemon_mailbox
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from sandbox.demo.tenant import microsoft_at
from sandbox.dovecot import DAEMON_APP, DOMAIN, build_mail_idp, start_dovecot
from sandbox.idp import User

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailintake-bench-sched-"))
    schema = f"b_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.postgres)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.postgres}?options=-csearch_path%3D{schema}"
    idp = build_mail_idp()
    try:
        with idp.serve() as base, start_dovecot(work / "dovecot", f"{base}/introspect") as dc:
            settings = Settings(home=work / "home", database_url=url)
            store = open_store(settings)
            specs = []
            for n in range(args.mailboxes):
                user = f"sched{n}@{DOMAIN}"
                idp.add_user(User(username=user, password="pw", consented_apps=set()))
                dc.add_delegate(DAEMON_APP, user)
                dc.deliver_many(user, [f"Subject: {n}\r\n\r\nbody {n}\r\n".encode()])
                specs.append(
                    daemon_mailbox(
                        f"m{n:04d}",
                        "imap",
                        dc.imap_port,
                        user,
                        idp.tenant_id,
                        host=dc.host,
                        poll_interval=args.interval,
                        output="capture",
                    )
                )
            apply_document(
                store,
                {
                    "authorization_servers": [microsoft_at(base)],
                    "outputs": [{"name": "capture", "type": "folder", "path": str(work / "out")}],
                    "mailboxes": specs,
                },
                {},
            )
            store.engine.dispose()
            run(args, settings, work)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, settings: Settings, work: Path) -> None:
    env = {
        **os.environ,
        "MAILINTAKE_HOME": str(settings.home),
        "MAILINTAKE_DATABASE_URL": settings.database_url or "",
        "PYTHONPATH": str(ROOT),
    }
    logs = [work / f"worker{n}.log" for n in range(args.workers)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailintake",
                "--log-level",
                "info",
                "--log-json",
                "worker",
                "--concurrency",
                str(args.concurrency),
                "--name",
                f"bench{n}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        for n, log in enumerate(logs)
    ]
    time.sleep(args.seconds)
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        process.wait(120)
    polls: dict[str, list[float]] = defaultdict(list)
    per_worker: Counter[int] = Counter()
    events: Counter[str] = Counter()
    for n, log in enumerate(logs):
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            events[entry.get("event", "")] += 1
            if entry.get("event") == "poll.done":
                at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
                polls[entry["mailbox"]].append(at.timestamp())
                per_worker[n] += 1
    every = sorted(t for times in polls.values() for t in times)
    # the steady state: from the end of the first round to the end of the run
    start = sorted(min(times) for times in polls.values())[-1] if polls else 0.0
    steady = [t for t in every if t >= start]
    span = (every[-1] - start) if steady else 0.0
    gaps = [
        b - a
        for times in polls.values()
        for a, b in zip(sorted(times), sorted(times)[1:], strict=False)
    ]
    print(
        f"{args.mailboxes} mailboxes every {args.interval} s, {args.workers} worker(s) of "
        f"concurrency {args.concurrency}, {args.seconds:.0f} s"
    )
    print(f"mailboxes polled: {len(polls)}; polls: {len(every)}; per worker: {dict(per_worker)}")
    if span > 0:
        needed = args.mailboxes / args.interval
        print(f"steady polls/s: {len(steady) / span:.2f} (needed: {needed:.2f})")
    if gaps:
        quantiles = statistics.quantiles(gaps, n=20)
        print(
            f"gap between two polls of a mailbox: min {min(gaps):.1f} s, median "
            f"{statistics.median(gaps):.1f} s, 95th {quantiles[-1]:.1f} s, max {max(gaps):.1f} s"
        )
    print(f"refused (another poll held it): {events['poll.busy']}; failed: {events['poll.failed']}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
