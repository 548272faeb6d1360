"""Graph push: from a message's arrival in the mailbox to its capture in the output folder,
with change notifications. A real ``mailintake serve`` process with a public URL keeps the
subscription (validated by the Graph emulator against it) and receives the notifications;
the mailbox's poll interval is an hour, so only a notification can start a pass in time.
Messages arrive one at a time, ``--samples`` of them (target: p50 ≤ 2 s).

    python -m benchmarks.bench_push_graph [--samples 20] [--gap 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.workdir import workdir
from mailintake.runtime import open_store
from mailintake.settings import Settings
from sandbox.graph import GraphEmulator
from sandbox.ports import free_port
from tests.support.graph_push import captured, configure, message, until
from tests.support.oauth import build_idp, make_certificate

MAILBOX = "push@contoso.onmicrosoft.com"
TARGET_P50 = 2.0


def capture_time(graph: GraphEmulator, out: Path, n: int) -> float:
    """Seconds from the message's arrival until its directory is in the output."""
    before = len(captured(out, "push"))
    raw = message(n, MAILBOX)
    started = time.perf_counter()
    graph.deliver(MAILBOX, raw)
    while len(captured(out, "push")) == before:
        if time.perf_counter() - started > 60:
            raise AssertionError(f"message {n} not captured within 60 s")
        time.sleep(0.005)
    return time.perf_counter() - started


def run(samples: int, gap: float) -> None:
    with workdir() as tmp:
        root = Path(tmp)
        idp = build_idp(make_certificate(root))
        with idp.serve():
            graph = GraphEmulator(idp)
            with graph.serve():
                home, out = root / "home", root / "out"
                store = open_store(Settings(home=home))
                configure(store, idp, graph, out, {"push": MAILBOX})
                store.engine.dispose()
                port = free_port()
                public = f"http://127.0.0.1:{port}"
                env = {**os.environ, "MAILINTAKE_HOME": str(home)}
                command = [sys.executable, "-m", "mailintake", "serve", "--port", str(port)]
                serve = subprocess.Popen(
                    [*command, "--public-url", public],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    until(lambda: graph.subscriptions.of_mailbox(MAILBOX), "a subscription", 60)
                    capture_time(graph, out, 0)  # the first pass, and a warm-up
                    times = []
                    for n in range(1, samples + 1):
                        times.append(capture_time(graph, out, n))
                        time.sleep(gap)
                finally:
                    serve.terminate()
                    serve.wait(timeout=30)
                sent = [d for d in graph.subscriptions.deliveries if d.kind == "change"]
    times.sort()
    p50 = statistics.median(times)
    p90 = times[max(0, round(0.9 * len(times)) - 1)]
    print(f"graph push: {samples} messages, one at a time, {gap:.1f} s apart")
    print(f"  notifications sent: {len(sent)}, answered {sorted({d.status for d in sent})}")
    print(f"  arrival to capture: p50 {p50:.3f} s, p90 {p90:.3f} s, max {times[-1]:.3f} s")
    print(f"graph push: p50 {p50:.3f} s (target <= {TARGET_P50:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5)
    arguments = parser.parse_args()
    run(arguments.samples, arguments.gap)
