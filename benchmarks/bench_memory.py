"""Memory for one very large message (default 200 MB: a short text and a ~150 MB attachment),
imported by ``mailintake poll`` into the folder output from the Graph emulator and from a real
Dovecot over IMAP. The import runs in its own process, which reports how far its resident
memory rose above where it stood just before the poll (peak RSS, Linux VmHWM, reset first).
Targets: Graph ≤ 64 MB; IMAP ≤ 1.5× the message.

    python -m benchmarks.bench_memory [--megabytes 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from benchmarks.dovecot_boxes import daemon_grant
from benchmarks.workdir import workdir
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from sandbox.graph import GraphEmulator
from tests.support.dovecot import DAEMON_APP, DOMAIN, build_mail_idp, start_dovecot
from tests.support.oauth import GRAPH_APP, GRAPH_SECRET, build_idp, make_certificate, microsoft_at

MAILBOX = "bench@contoso.onmicrosoft.com"


def large_message(megabytes: int) -> tuple[bytes, str]:
    """A message of about ``megabytes`` MB and the SHA-256 of its attachment."""
    # base64 makes 3 bytes 4 and adds a line break every 76 characters
    attachment = os.urandom(megabytes * 1_000_000 * 3 * 76 // (4 * 78) - 4096)
    message = EmailMessage()
    message["From"] = "scanner@contoso.example"
    message["To"] = MAILBOX
    message["Subject"] = f"Scan of {megabytes} MB"
    message["Message-ID"] = "<large-scan@contoso.example>"
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    message.set_content("The scanned archive is attached.\r\n")
    message.add_attachment(
        attachment, maintype="application", subtype="octet-stream", filename="archive.bin"
    )
    raw = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw, hashlib.sha256(attachment).hexdigest()


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(home: Path) -> dict[str, Any]:
    """In the import's own process: poll once; resident memory before and at the peak."""
    from mailintake.engine.poll import Poller
    from mailintake.engine.runtime import ImportRuntime

    store = open_store(Settings(home=home))
    with ImportRuntime() as runtime:  # as the commands that import do
        poller = Poller(store, home, runtime=runtime)
        Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
        before = _status("VmRSS")
        result = poller.poll("big")
        peak = _status("VmHWM")
    return {"before": before, "peak": peak, "result": result.as_dict()}


def _configure(home: Path, out: Path, mailbox: dict[str, Any], server: dict[str, Any]) -> None:
    store = open_store(Settings(home=home))
    apply_document(
        store,
        {
            "authorization_servers": [server],
            "outputs": [{"name": "out", "type": "folder", "path": str(out)}],
            "mailboxes": [
                {
                    "name": "big",
                    "output": "out",
                    "after_import": "keep",
                    "max_message_size": "1 GB",
                    **mailbox,
                }
            ],
        },
        {},
    )
    store.engine.dispose()


def _run_child(home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_memory", "--measure", str(home)],
        check=True,
        capture_output=True,
        text=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _check(out: Path, raw: bytes, digest: str) -> None:
    (found,) = out.glob("big/*/*/message.eml")
    assert found.stat().st_size == len(raw), "message.eml differs in size"
    assert hashlib.sha256(found.read_bytes()).hexdigest() == hashlib.sha256(raw).hexdigest()
    (attachment,) = found.parent.glob("attachments/*")
    assert hashlib.sha256(attachment.read_bytes()).hexdigest() == digest, "attachment differs"


def graph(root: Path, raw: bytes, digest: str) -> dict[str, Any]:
    idp = build_idp(make_certificate(root))
    with idp.serve():
        emulator = GraphEmulator(idp)
        with emulator.serve() as base:
            emulator.add_mailbox(MAILBOX)
            emulator.deliver(MAILBOX, raw)
            home, out = root / "home-graph", root / "out-graph"
            _configure(
                home,
                out,
                {
                    "protocol": "graph",
                    "graph_url": base,
                    "username": MAILBOX,
                    "oauth": {
                        "grant_type": "client_credentials",
                        "tenant_id": idp.tenant_id,
                        "client_id": GRAPH_APP,
                        "client_secret": GRAPH_SECRET,
                    },
                },
                microsoft_at(idp.base_url),
            )
            answer = _run_child(home)
    assert answer["result"]["imported"] == 1, answer
    _check(out, raw, digest)
    return answer


def imap(root: Path, raw: bytes, digest: str) -> dict[str, Any]:
    idp = build_mail_idp()
    root.chmod(0o711)
    with idp.serve() as base, start_dovecot(root / "dovecot", f"{base}/introspect") as dovecot:
        user = f"big@{DOMAIN}"
        dovecot.add_delegate(DAEMON_APP, user)
        dovecot.deliver(user, raw)
        home, out = root / "home-imap", root / "out-imap"
        _configure(
            home,
            out,
            {
                "protocol": "imap",
                "host": "127.0.0.1",
                "port": dovecot.imap_port,
                "security": "none",
                "username": user,
                "oauth": daemon_grant(idp.tenant_id),
            },
            microsoft_at(base),
        )
        answer = _run_child(home)
    assert answer["result"]["imported"] == 1, answer
    _check(out, raw, digest)
    return answer


def run(megabytes: int) -> None:
    raw, digest = large_message(megabytes)
    size = len(raw)
    print(f"message: {size / 1e6:.0f} MB (an attachment of {size * 3 / 4e6:.0f} MB, base64)")
    with workdir() as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # Dovecot's processes reach their folders below it
        (root / "g").mkdir()
        (root / "i").mkdir()
        for label, measured, limit in (
            ("graph", graph(root / "g", raw, digest), 64 * 1024 * 1024),
            ("imap", imap(root / "i", raw, digest), int(1.5 * size)),
        ):
            assert measured["result"]["imported"] == 1, measured
            grew = measured["peak"] - measured["before"]
            print(
                f"{label}: peak resident memory grew {grew / 2**20:6.1f} MiB "
                f"({grew / size:.2f}× the message); target <= {limit / 2**20:.0f} MiB: "
                f"{'met' if grew <= limit else 'NOT met'}"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]))))
        raise SystemExit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    run(parser.parse_args().megabytes)
