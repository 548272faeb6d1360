"""fetchmail (Debian's 6.4, which has no OAuth 2.0) fetching a mailbox with a password login
over IMAPS, each message handed to a delivery command that writes it to a file: a reference
for the IMAP benchmark, not a like-for-like comparison (no token, no MIME, no metadata)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


def fetchmail(folder: Path, host: str, port: int, user: str, password: str, ca_file: Path) -> float:
    """Seconds to fetch every message of ``user``'s INBOX into ``folder``/out."""
    binary = shutil.which("fetchmail")
    if binary is None:
        raise SystemExit("fetchmail is not installed: make bench installs it (Debian package)")
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    rc = folder / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\nset no syslog\n"
        f'poll {host} service {port} protocol IMAP auth password user "{user}" '
        f'password "{password}" ssl sslcertck sslcertfile "{ca_file}" keep fetchall '
        f"mda \"/bin/sh -c 'cat > {out}/$$'\"\n"
    )
    rc.chmod(0o600)
    started = time.perf_counter()
    done = subprocess.run(
        [binary, "--fetchmailrc", str(rc), "--nodetach", "--silent", "-i", str(folder / "ids")],
        check=False,
        capture_output=True,
        text=True,
        env={"HOME": str(folder), "FETCHMAILHOME": str(folder), "PATH": "/usr/bin:/bin"},
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: no mail
        raise SystemExit(f"fetchmail failed ({done.returncode}): {done.stdout} {done.stderr}")
    return elapsed
