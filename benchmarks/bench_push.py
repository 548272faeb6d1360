"""Push: IMAP mailboxes on a real Dovecot kept in IDLE by one ``mailintake worker`` process on
PostgreSQL (a database of its own, dropped after), read app-only (client credentials, the
daemon app a delegate of each), polled every hour, so that only push brings a message in
before then.

Once every mailbox is in IDLE and the first passes are over, the worker's CPU is read from
/proc (its process and its output's writer processes) over ``--idle-seconds`` in which
nothing arrives. Then ``--samples`` times a message is appended to a random mailbox (written
into its Maildir, as a delivery does) and the time until its message directory appears in the
folder output is measured; p50 and max are printed next to their targets (p50 <= 2 s, max
<= 5 s).

    python -m benchmarks.bench_push [--mailboxes 200] [--samples 20] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks import cpu
from benchmarks import fleet_measure as measure
from benchmarks.fleet_setup import SECRETS, Box, Servers, apply_file, servers, write_config
from benchmarks.workdir import workdir
from mailintake.crypto import generate_key
from mailintake.observability.logging import configure as configure_logging
from sandbox.dovecot import DOMAIN

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INTERVAL = 3600  # the safety net stays out of the measurement


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_push: not within {seconds:.0f} s: {what}")
        time.sleep(0.2)


def captured(out: Path, box: Box) -> int:
    """The messages of ``box`` in the output (a directory each)."""
    return sum(1 for _ in (out / box.name).glob("*/*/message.eml"))


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.count: int = args.mailboxes

    def main(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        configure_logging("warning")
        print(
            f"push: {self.count} IMAP mailboxes in IDLE on one worker, {self.args.samples} "
            f"samples; {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
            flush=True,
        )
        url = make_url(self.args.database_url)
        name = f"mailintake_push_{os.getpid()}"
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        database = measure.Database(admin, name)
        database.create()
        try:
            with workdir() as tmp:
                root = Path(tmp)
                root.chmod(0o711)  # Dovecot's processes reach their folders below it
                db_url = url.set(database=name).render_as_string(hide_password=False)
                self.push(root, db_url)
        finally:
            database.drop()

    def push(self, root: Path, db_url: str) -> None:
        environ = {
            "MAILINTAKE_DATABASE_URL": db_url,
            "MAILINTAKE_SECRET_KEY": generate_key(),
            **SECRETS,
        }
        boxes = [Box(f"p{n:03d}", "imap", "app", f"p{n:03d}@{DOMAIN}") for n in range(self.count)]
        out = root / "out"
        with servers(root) as fleet:
            for box in boxes:
                fleet.add(box)
            config = root / "push.yaml"
            write_config(config, fleet.document(boxes, INTERVAL, out))
            apply_file(config, {**environ, "MAILINTAKE_HOME": str(root / "setup")})
            worker = measure.Worker("push-a", root / "worker")
            try:
                options = ["--idle-connections", str(self.count)]
                worker.start(environ, options)
                self.measure(fleet, boxes, worker, out)
            finally:
                worker.stop()
            if self.args.compare:  # the same worker without push, for its CPU alone
                polling = measure.Worker("push-b", root / "worker-b")
                try:
                    polling.start(environ, ["--idle-connections", "0"])
                    time.sleep(10)  # started, and its first look at every mailbox done
                    self.settle(polling)
                    self.idle_cpu(fleet, polling, "no IDLE connection (--idle-connections 0)")
                finally:
                    polling.stop()

    def idle_cpu(self, fleet: Servers, worker: measure.Worker, label: str) -> None:
        """The worker's and Dovecot's CPU over ``--idle-seconds`` with nothing arriving."""
        dovecot = fleet.dovecot.process.pid
        before, server_before = cpu.tree_seconds(worker.pid), cpu.tree_seconds(dovecot)
        idle = self.args.idle_seconds
        time.sleep(idle)
        spent = cpu.tree_seconds(worker.pid) - before
        served = cpu.tree_seconds(dovecot) - server_before
        polls = [e for e in worker.read() if e.name in measure.POLLED]
        print(
            f"idle, {label}, nothing arriving, {idle:.0f} s: worker CPU {spent:.2f} s = "
            f"{spent / idle:.2%} of a core (its scheduler's loop and heartbeats included); "
            f"Dovecot {served / idle:.2%} of a core; passes meanwhile: {len(polls)}",
            flush=True,
        )

    def settle(self, worker: measure.Worker, quiet: float = 5.0) -> None:
        """Wait until no pass has ended for ``quiet`` seconds."""
        last = time.monotonic()
        deadline = last + 300
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            if any(e.name in measure.POLLED for e in worker.read()):
                last = time.monotonic()
            time.sleep(0.5)

    def measure(self, fleet: Servers, boxes: list[Box], worker: measure.Worker, out: Path) -> None:
        started = time.monotonic()
        listening: set[str] = set()
        passes: set[str] = set()

        def ready() -> bool:
            for event in worker.read():
                if event.name == "push.listening":
                    listening.add(event.mailbox)
                elif event.name in measure.POLLED:
                    passes.add(event.mailbox)
            return len(listening) == self.count and len(passes) == self.count

        wait_for(ready, 300, "every mailbox in IDLE and polled once")
        print(f"every mailbox in IDLE and polled once after {time.monotonic() - started:.1f} s")
        self.settle(worker)  # the passes each connection's start asked for are over
        self.idle_cpu(fleet, worker, f"{self.count} connections in IDLE")
        chosen = random.Random(7)
        delays: list[float] = []
        for n in range(self.args.samples):
            box = chosen.choice(boxes)
            had = captured(out, box)
            appended = time.monotonic()
            fleet.append(box)
            deadline = appended + 30
            while captured(out, box) == had:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench_push: sample {n}: {box.name} not captured in 30 s")
                time.sleep(0.005)
            delays.append(time.monotonic() - appended)
            time.sleep(chosen.uniform(0.5, 1.5))
        p50, worst = statistics.median(delays), max(delays)
        print(
            f"arrival to capture over {len(delays)} samples: p50 {p50:.2f} s (target <= 2 s) "
            f"{verdict(p50 <= 2)}, max {worst:.2f} s (target <= 5 s) {verdict(worst <= 5)}; "
            f"all: {' '.join(f'{d:.2f}' for d in delays)}"
        )
        ended = [e for e in worker.read() if e.name == "push.reconnect"]
        print(f"IDLE connections that ended during the run: {len(ended)}")
        print(f"machine load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="then the worker's idle CPU without push (--idle-connections 0)",
    )
    parser.add_argument("--database-url", default=os.environ.get("PUSH_DATABASE_URL", POSTGRES))
    Run(parser.parse_args()).main()
