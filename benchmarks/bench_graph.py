"""Graph import speed with network latency, side by side in one run: a sequential client
(list pages, then GET each ``$value`` one after another) against ``mailintake poll``, both
against the Graph emulator with the same injected latency per request (target ≥ 3.5×).

    python -m benchmarks.bench_graph [--messages 400] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.corpus import corpus
from benchmarks.workdir import wait_until_settled, workdir
from mailintake.engine.poll import Poller
from mailintake.engine.runtime import ImportRuntime
from mailintake.oauth.tokens import TokenManager
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from sandbox import http_clients
from sandbox.graph import GraphEmulator
from tests.support.oauth import GRAPH_APP, GRAPH_SECRET, build_idp, make_certificate, microsoft_at

MAILBOX = "bench@contoso.onmicrosoft.com"


def sequential(base: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Prefer": 'IdType="ImmutableId"'}
    count = 0
    with http_clients.Client(headers=headers, timeout=60) as client:
        url: str | None = f"{base}/users/{MAILBOX}/mailFolders/inbox/messages"
        params: dict[str, str] | None = {"$select": "id", "$top": "200"}
        while url:
            page = client.get(url, params=params).json()
            params = None
            for message in page["value"]:
                client.get(f"{base}/users/{MAILBOX}/messages/{message['id']}/$value").read()
                count += 1
            url = page.get("@odata.nextLink")
    return count


def timed_poll(home: Path, count: int) -> float:
    """mailintake's import, timed like the sequential client: the transfer, not start-up."""
    settings = Settings(home=home)
    store = open_store(settings)
    with ImportRuntime() as runtime:  # as the commands that import do
        poller = Poller(store, home, runtime=runtime)
        started = time.perf_counter()
        result = poller.poll("bench")
        elapsed = time.perf_counter() - started
    assert result.imported == count, result
    store.engine.dispose()
    return elapsed


def run(count: int, latency: float) -> None:
    messages = corpus(count)
    with workdir() as tmp:
        root = Path(tmp)
        idp = build_idp(make_certificate(root))
        with idp.serve():
            graph = GraphEmulator(idp)
            with graph.serve() as base:
                graph.add_mailbox(MAILBOX)
                for raw in messages:
                    graph.deliver(MAILBOX, raw)
                settings = Settings(home=root / "home")
                store = open_store(settings)
                apply_document(
                    store,
                    {
                        "authorization_servers": [microsoft_at(idp.base_url)],
                        "outputs": [{"name": "out", "type": "folder", "path": str(root / "out")}],
                        "mailboxes": [
                            {
                                "name": "bench",
                                "protocol": "graph",
                                "graph_url": base,
                                "username": MAILBOX,
                                "output": "out",
                                "after_import": "keep",
                                "oauth": {
                                    "grant_type": "client_credentials",
                                    "tenant_id": idp.tenant_id,
                                    "client_id": GRAPH_APP,
                                    "client_secret": GRAPH_SECRET,
                                },
                            }
                        ],
                    },
                    {},
                )
                token = TokenManager(store).access_token("bench")
                store.engine.dispose()
                graph.latency = latency
                wait_until_settled(tmp)
                # Both clients run in their own process, as they would in production; the
                # emulator keeps this one to itself.
                slow = float(
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.bench_graph",
                            "--sequential",
                            base,
                            token,
                            str(count),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                ours = float(
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.bench_graph",
                            "--ours",
                            str(settings.home),
                            str(count),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                stats = {k: v for k, v in graph.stats.items() if k != "by_path"}
                print("  emulator:", stats)
    print(f"corpus: {count} messages, latency {latency * 1000:.0f} ms per request")
    print(f"  sequential client: {count / slow:7.1f} msg/s")
    print(f"  mailintake:        {count / ours:7.1f} msg/s")
    print(f"graph: mailintake / sequential = {slow / ours:.2f} (target >= 3.5)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--sequential":
        started = time.perf_counter()
        assert sequential(sys.argv[2], sys.argv[3]) == int(sys.argv[4])
        print(time.perf_counter() - started)
        raise SystemExit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--ours":
        print(timed_poll(Path(sys.argv[2]), int(sys.argv[3])))
        raise SystemExit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.02)
    arguments = parser.parse_args()
    run(arguments.messages, arguments.latency)
